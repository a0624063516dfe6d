import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../errors.ts';
import type { ChatMessage } from '../api/openai/schemas.ts';
import { loadChatTemplate } from './template.ts';
import { mediaKindsOf, multimodalDataOf } from './multimodal.ts';

const limits = { maxDataBytes: 16 };
const PNG = 'data:image/png;base64,iVBORw0KGgo='; // 8 bytes

function user(...parts: unknown[]): ChatMessage {
  return { role: 'user', content: parts } as ChatMessage;
}
/** The same message for the template, whose message type is its own. */
const forTemplate = (m: ChatMessage) => m as never;
const image = (url: string) => ({ type: 'image_url', image_url: { url } });
const video = (url: string) => ({ type: 'video_url', video_url: { url } });

function rejects(fn: () => unknown, param: string, message: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.param, param);
    assert.match(e.message, message);
    return true;
  });
}

describe('multimodalDataOf()', () => {
  test('images and videos become Dynamo multi_modal_data, in order, keyed by part type', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' } as ChatMessage,
      user({ type: 'text', text: 'Compare' }, image('https://a.example/1.png'), image(PNG)),
      user(video('http://b.example/v.mp4')),
    ];
    assert.deepEqual(multimodalDataOf(messages, limits), {
      image_url: [{ Url: 'https://a.example/1.png' }, { Url: PNG }],
      video_url: [{ Url: 'http://b.example/v.mp4' }],
    });
  });

  test('text-only requests carry none', () => {
    assert.equal(multimodalDataOf([user({ type: 'text', text: 'hi' })], limits), undefined);
    assert.equal(
      multimodalDataOf([{ role: 'user', content: 'hi' } as ChatMessage], limits),
      undefined,
    );
  });

  test('a data URL must be base64, of the matching media type, and within the size limit', () => {
    const at = 'messages[0].content[0].image_url.url';
    rejects(() => multimodalDataOf([user(image('data:image/png,rawbytes'))], limits), at, /base64/);
    rejects(
      () => multimodalDataOf([user(image('data:text/html;base64,PGI+'))], limits),
      at,
      /unsupported media type "text\/html" for an image \(expected image\/\*\)/,
    );
    rejects(
      () => multimodalDataOf([user(image('data:image/png;base64,@@@@'))], limits),
      at,
      /not valid base64/,
    );
    rejects(
      () => multimodalDataOf([user(image(`data:image/png;base64,${'A'.repeat(24)}`))], limits),
      at,
      /18 bytes, more than the 16-byte limit/,
    );
    rejects(
      () => multimodalDataOf([user(video(PNG))], limits),
      'messages[0].content[0].video_url.url',
      /for an video|expected video\/\*/,
    );
  });

  test('other URL schemes and other part types are refused, naming the part', () => {
    rejects(
      () => multimodalDataOf([user(image('file:///etc/passwd'))], limits),
      'messages[0].content[0].image_url.url',
      /unsupported URL scheme "file:"/,
    );
    rejects(
      () => multimodalDataOf([user(image('not a url'))], limits),
      'messages[0].content[0].image_url.url',
      /must be a URL/,
    );
    rejects(
      () =>
        multimodalDataOf([
          user({ type: 'text', text: 'x' }, {
            type: 'input_audio',
            input_audio: { data: 'AA==', format: 'wav' },
          }),
        ], limits),
      'messages[0].content[1].type',
      /Unsupported content part type "input_audio"/,
    );
  });

  test('mediaKindsOf() names the kinds present', () => {
    assert.deepEqual([...mediaKindsOf([user(image(PNG), video('https://v'))])], ['image', 'video']);
  });
});

describe('chat templates and media', () => {
  const config = (template: string) => JSON.stringify({ chat_template: template });
  const text = config(
    '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}',
  );
  const vision = config(
    "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for p in m.content %}{% if p.type == 'image' %}<image>{% else %}{{ p.text }}{% endif %}{% endfor %}{% endif %}{% endfor %}",
  );

  test('a text-only template refuses image content with a 400 that says so', () => {
    const template = loadChatTemplate(text);
    assert.throws(
      () =>
        template.render({ messages: [forTemplate(user({ type: 'text', text: 'x' }, image(PNG)))] }),
      (e: unknown) => {
        assert.equal((e as { status?: number }).status, 400);
        assert.match(
          (e as Error).message,
          /^This model's chat template cannot render image content \(it is a text-only template\)/,
        );
        return true;
      },
    );
  });

  test('a template that renders images gets a placeholder per image', () => {
    const template = loadChatTemplate(vision);
    assert.equal(
      template.render({
        messages: [forTemplate(user({ type: 'text', text: 'see ' }, image(PNG)))],
      }),
      'see <image>',
    );
    // It has no video branch: video content is refused the same way.
    assert.throws(
      () => template.render({ messages: [forTemplate(user(video('https://v.example/a.mp4')))] }),
      /cannot render video content/,
    );
  });
});
