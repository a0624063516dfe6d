import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ModelNotFoundError,
  OverloadedError,
  toApiError,
  toErrorBody,
  ValidationError,
} from './errors.ts';

test('toErrorBody() uses OpenAI, Anthropic and admin envelopes', () => {
  const error = new ValidationError('Invalid request body: "messages": required', {
    param: 'messages',
  });
  assert.deepEqual(toErrorBody(error, 'openai'), {
    error: {
      message: 'Invalid request body: "messages": required',
      type: 'invalid_request_error',
      param: 'messages',
      code: 'invalid_value',
    },
  });
  assert.deepEqual(toErrorBody(error, 'anthropic'), {
    type: 'error',
    error: { type: 'invalid_request_error', message: 'Invalid request body: "messages": required' },
  });
  assert.deepEqual(toErrorBody(error, 'admin'), {
    error: 'Invalid request body: "messages": required',
  });
});

test('ModelNotFoundError is a 404 with code model_not_found and param model', () => {
  const error = new ModelNotFoundError('llama-3');
  assert.equal(error.status, 404);
  assert.equal(error.message, 'Model "llama-3" not found');
  assert.deepEqual(toErrorBody(error, 'openai'), {
    error: {
      message: 'Model "llama-3" not found',
      type: 'invalid_request_error',
      param: 'model',
      code: 'model_not_found',
    },
  });
});

test('toApiError() hides unknown errors behind a generic 500', () => {
  const secret = new Error('ECONNREFUSED 10.0.0.7:5432 at Object.connect (/srv/x.js:1:1)');
  const error = toApiError(secret);
  assert.equal(error.status, 500);
  assert.equal(error.message, 'Internal server error');
  assert.equal(error.cause, secret);
  assert.doesNotMatch(JSON.stringify(toErrorBody(error, 'openai')), /ECONNREFUSED|x\.js/);
});

test('OverloadedError carries the configured status', () => {
  assert.equal(new OverloadedError(529).status, 529);
  assert.equal(new OverloadedError(503).status, 503);
});
