import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSessionTable } from './sessions.ts';

describe('createSessionTable()', () => {
  test('a bound session is found until it has been idle for its TTL', () => {
    let now = 0;
    const table = createSessionTable({ now: () => now, ttlSecs: 10 });
    assert.equal(table.lookup('s'), undefined);
    table.bind({ sessionId: 's' }, 'a1');
    now = 9_999;
    assert.equal(table.lookup('s'), 'a1');
    // Each request restarts the idle clock.
    table.bind({ sessionId: 's' }, 'a1');
    now = 19_998;
    assert.equal(table.lookup('s'), 'a1');
    now = 19_999;
    assert.equal(table.lookup('s'), undefined);
    assert.equal(table.size(), 0);
  });

  test('session_control.timeout replaces the TTL for that session; 0 does not bind', () => {
    let now = 0;
    const table = createSessionTable({ now: () => now, ttlSecs: 300 });
    table.bind({ sessionId: 'short', ttlSecs: 1 }, 'a1');
    table.bind({ sessionId: 'none', ttlSecs: 0 }, 'a1');
    assert.equal(table.lookup('none'), undefined);
    now = 999;
    assert.equal(table.lookup('short'), 'a1');
    now = 1_000;
    assert.equal(table.lookup('short'), undefined);
  });

  test('re-binding moves the session; close forgets it', () => {
    const table = createSessionTable({ now: () => 0, ttlSecs: 300 });
    table.bind({ sessionId: 's' }, 'a1');
    table.bind({ sessionId: 's' }, 'b2');
    assert.equal(table.lookup('s'), 'b2');
    table.close('s');
    assert.equal(table.lookup('s'), undefined);
  });

  test('a TTL of 0 turns affinity off', () => {
    const table = createSessionTable({ now: () => 0, ttlSecs: 0 });
    table.bind({ sessionId: 's', ttlSecs: 60 }, 'a1');
    assert.equal(table.lookup('s'), undefined);
  });

  test('past maxSessions the least recently used session goes first', () => {
    const table = createSessionTable({ now: () => 0, ttlSecs: 300, maxSessions: 2 });
    table.bind({ sessionId: 'one' }, 'a1');
    table.bind({ sessionId: 'two' }, 'a1');
    table.bind({ sessionId: 'one' }, 'a1');
    table.bind({ sessionId: 'three' }, 'a1');
    assert.equal(table.size(), 2);
    assert.equal(table.lookup('two'), undefined);
    assert.equal(table.lookup('one'), 'a1');
    assert.equal(table.lookup('three'), 'a1');
  });
});
