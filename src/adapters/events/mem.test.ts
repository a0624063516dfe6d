import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomPublisherId, subjectMatches, topicOf } from './mem.ts';

test('subjectMatches() follows NATS: * is one token, a final > one or more', () => {
  assert.ok(subjectMatches('namespace.dynamo.kv_metrics', 'namespace.dynamo.kv_metrics'));
  assert.ok(subjectMatches('namespace.*.kv_metrics', 'namespace.dynamo.kv_metrics'));
  assert.ok(subjectMatches('namespace.>', 'namespace.dynamo.component.backend.kv-events'));
  assert.ok(!subjectMatches('namespace.>', 'namespace'));
  assert.ok(!subjectMatches('namespace.*', 'namespace.dynamo.kv_metrics'));
  assert.ok(!subjectMatches('namespace.dynamo', 'namespace.dynamo.kv_metrics'));
  assert.ok(!subjectMatches('namespace.dynamo.kv_metrics', 'namespace.dynamo'));
});

test('topicOf() is the last subject token; publisher ids are u64 hex', () => {
  assert.equal(topicOf('namespace.dynamo.component.backend.kv-events'), 'kv-events');
  assert.match(randomPublisherId(), /^[0-9a-f]{1,16}$/);
});
