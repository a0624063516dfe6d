/**
 * `/metrics` after real traffic: request outcomes per endpoint and request type, latency and
 * sequence-length histograms, in-flight gauges back to zero, the model card gauges.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { metricValue, MODEL, readSse, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const P = 'dynamo_frontend';
const messages = [{ role: 'user', content: 'count my tokens' }];

describe(`metrics after traffic on ${currentRuntime()}`, () => {
  test('requests, histograms, gauges and model gauges', async () => {
    const stack = await startStack();
    try {
      const unary = await stack.post('/v1/chat/completions', {
        model: MODEL,
        messages,
        max_tokens: 6,
      });
      assert.equal(unary.status, 200);
      await unary.text();
      for (let i = 0; i < 2; i++) {
        const streamed = await stack.post('/v1/chat/completions', {
          model: MODEL,
          messages,
          max_tokens: 8,
          stream: true,
        });
        assert.ok((await readSse(streamed)).done);
      }
      const completion = await stack.post('/v1/completions', {
        model: MODEL,
        prompt: 'count',
        max_tokens: 4,
      });
      assert.equal(completion.status, 200);
      await completion.text();
      const rejected = await stack.post('/v1/chat/completions', {
        model: MODEL,
        messages,
        max_tokens: 40_960,
      });
      assert.equal(rejected.status, 400);
      await rejected.text();

      // Stream metrics close after the last byte is written: wait for them, bounded.
      const text = await waitFor(async () => {
        const t = await stack.metrics();
        return metricValue(t, `${P}_requests_total`, { request_type: 'stream' }) >= 2 &&
            metricValue(t, `${P}_inflight_requests`, { model: MODEL }) === 0
          ? t
          : undefined;
      }, { what: 'two finished streams and nothing in flight' });

      const total = (labels: Record<string, string>) =>
        metricValue(text, `${P}_requests_total`, { model: MODEL, ...labels });
      assert.equal(
        total({
          endpoint: 'chat_completions',
          request_type: 'unary',
          status: 'success',
          error_type: '',
        }),
        1,
      );
      assert.equal(
        total({ endpoint: 'chat_completions', request_type: 'stream', status: 'success' }),
        2,
      );
      assert.equal(total({ endpoint: 'completions', request_type: 'unary', status: 'success' }), 1);
      assert.equal(
        total({ endpoint: 'chat_completions', status: 'error', error_type: 'validation' }),
        1,
      );
      assert.equal(
        metricValue(text, `${P}_requests_started_total`, {
          model: MODEL,
          endpoint: 'chat_completions',
        }),
        4,
      );

      const byModel = { model: MODEL };
      assert.ok(metricValue(text, `${P}_time_to_first_token_seconds_count`, byModel) >= 4);
      assert.ok(metricValue(text, `${P}_inter_token_latency_seconds_count`, byModel) > 0);
      assert.equal(metricValue(text, `${P}_input_sequence_tokens_count`, byModel), 4);
      assert.ok(metricValue(text, `${P}_input_sequence_tokens_sum`, byModel) > 0);
      assert.equal(metricValue(text, `${P}_output_sequence_tokens_count`, byModel), 4);
      assert.equal(metricValue(text, `${P}_output_sequence_tokens_sum`, byModel), 6 + 8 + 8 + 4);
      assert.equal(metricValue(text, `${P}_output_tokens_total`, byModel), 26);
      assert.equal(metricValue(text, `${P}_request_duration_seconds_count`, byModel), 5);
      assert.match(
        text,
        new RegExp(`^${P}_time_to_first_token_seconds_bucket\\{[^}]*le="\\+Inf"[^}]*\\} 4$`, 'm'),
      );

      for (const gauge of ['inflight_requests', 'active_requests', 'queued_requests']) {
        assert.equal(metricValue(text, `${P}_${gauge}`, byModel), 0, gauge);
      }
      assert.match(
        text,
        /^dynamo_frontend_model_context_length\{model="Qwen\/Qwen3-0\.6B"\} 40960$/m,
      );
      assert.equal(metricValue(text, `${P}_model_kv_cache_block_size`, byModel), 64);
      assert.equal(metricValue(text, `${P}_model_total_kv_blocks`, byModel), 16384);
      assert.equal(metricValue(text, `${P}_model_max_num_seqs`, byModel), 256);
      assert.equal(metricValue(text, `${P}_model_ready`, byModel), 1);
      assert.equal(
        metricValue(text, `${P}_http_requests_total`, {
          method: 'POST',
          route: '/v1/chat/completions',
          status: '200',
        }),
        3,
      );
    } finally {
      await stack.close();
    }
  });
});
