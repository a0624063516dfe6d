import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { BadRequestError } from '../errors.ts';
import {
  ChatTemplateError,
  ChatTemplateLoadError,
  loadChatTemplate,
  MissingChatTemplateError,
} from './template.ts';

const qwenConfig = await readFile(
  new URL('../../../tests/fixtures/model/tokenizer_config.json', import.meta.url),
  'utf8',
);
const qwen = loadChatTemplate(qwenConfig);
const configWith = (chatTemplate: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ chat_template: chatTemplate, ...extra });

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } } },
  },
};

test('Qwen3 template: one user message with add_generation_prompt', () => {
  assert.equal(
    qwen.render({ messages: [{ role: 'user', content: 'Hello' }], add_generation_prompt: true }),
    '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n',
  );
});

test('Qwen3 template: system, user, assistant, user turns', () => {
  const prompt = qwen.render({
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' },
    ],
    add_generation_prompt: true,
  });
  assert.equal(
    prompt,
    '<|im_start|>system\nBe brief.<|im_end|>\n' +
      '<|im_start|>user\nHi<|im_end|>\n' +
      '<|im_start|>assistant\nHello!<|im_end|>\n' +
      '<|im_start|>user\nBye<|im_end|>\n' +
      '<|im_start|>assistant\n',
  );
});

test('Qwen3 template: tools render in a <tools> block in Python tojson style', () => {
  const prompt = qwen.render({
    messages: [{ role: 'system', content: 'Sys' }, { role: 'user', content: 'Weather?' }],
    tools: [weather],
    add_generation_prompt: true,
  });
  assert.ok(prompt.startsWith('<|im_start|>system\nSys\n\n# Tools\n'), prompt);
  assert.ok(
    prompt.includes(
      '<tools>\n{"type": "function", "function": {"name": "get_weather", "description": ' +
        '"Weather of a city", "parameters": {"type": "object", "properties": {"city": ' +
        '{"type": "string"}}}}}\n</tools>',
    ),
    prompt,
  );
  assert.ok(prompt.endsWith('<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n'));
});

test('Qwen3 template: enable_thinking false as a chat template argument', () => {
  const prompt = qwen.render({
    messages: [{ role: 'user', content: 'Hi' }],
    add_generation_prompt: true,
    enable_thinking: false,
  });
  assert.ok(prompt.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n'), prompt);
});

test('content as an array of text parts renders like the joined string', () => {
  const parts = qwen.render({
    messages: [{
      role: 'user',
      content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }],
    }],
  });
  assert.equal(parts, qwen.render({ messages: [{ role: 'user', content: 'one\ntwo' }] }));
});

test('tool call arguments: Qwen3 prints a JSON string verbatim and an object with tojson', () => {
  const call = (args: unknown) =>
    qwen.render({
      messages: [
        { role: 'user', content: 'Weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{
            id: 'c1',
            type: 'function',
            function: { name: 'get_weather', arguments: args },
          }],
        },
        { role: 'tool', content: '{"temp": 20}' },
      ],
      tools: [weather],
    });
  assert.ok(call('{"city":"Paris"}').includes('"arguments": {"city":"Paris"}}'));
  assert.ok(call({ city: 'Paris' }).includes('"arguments": {"city": "Paris"}}'));
  assert.ok(call('{}').includes('<tool_response>\n{"temp": 20}\n</tool_response>'));
});

test('tool call arguments become objects for templates that do not test "is string"', () => {
  const t = loadChatTemplate(configWith(
    '{% for m in messages %}{% for c in m.tool_calls %}' +
      '{{ c.function.name }}({{ c.function.arguments.city }}){% endfor %}{% endfor %}',
  ));
  const prompt = t.render({
    messages: [{
      role: 'assistant',
      content: '',
      tool_calls: [{ function: { name: 'get_weather', arguments: '{"city": "Oslo"}' } }],
    }],
  });
  assert.equal(prompt, 'get_weather(Oslo)');
});

test('reasoning_content: read by Qwen3, injected as <think> for templates that ignore it', () => {
  const messages = [
    { role: 'user', content: 'Why?' },
    { role: 'assistant', content: 'Because.', reasoning_content: 'Let me think.' },
  ];
  assert.ok(
    qwen.render({ messages }).endsWith(
      '<|im_start|>assistant\n<think>\nLet me think.\n</think>\n\nBecause.<|im_end|>\n',
    ),
  );
  const plain = loadChatTemplate(configWith(
    '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}',
  ));
  assert.equal(
    plain.render({ messages }),
    '[user]Why?[assistant]<think>Let me think.</think>Because.',
  );
});

test('special tokens from tokenizer_config reach the template, AddedToken objects unwrapped', () => {
  const t = loadChatTemplate(configWith(
    '{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}',
    { bos_token: { content: '<s>', special: true }, eos_token: '</s>', unk_token: null },
  ));
  assert.equal(t.render({ messages: [{ role: 'user', content: 'x' }] }), '<s>x</s>');
});

test('a named template list: default without tools, tool_use with tools', () => {
  const t = loadChatTemplate(configWith([
    { name: 'default', template: 'D{{ messages | length }}' },
    { name: 'tool_use', template: 'T{{ tools | length }}' },
  ]));
  assert.deepEqual(t.names, ['default', 'tool_use']);
  const messages = [{ role: 'user', content: 'x' }];
  assert.equal(t.render({ messages }), 'D1');
  assert.equal(t.render({ messages, tools: [] }), 'D1');
  assert.equal(t.render({ messages, tools: [weather] }), 'T1');
});

test('options.template replaces the tokenizer_config template', () => {
  const t = loadChatTemplate(qwenConfig, { template: 'custom {{ messages[0].content }}' });
  assert.equal(t.render({ messages: [{ role: 'user', content: 'x' }] }), 'custom x');
});

test('a failing template throws ChatTemplateError (HTTP 400) that says what failed', () => {
  const t = loadChatTemplate(configWith(
    "{% if messages[0].role != 'system' %}{{ raise_exception('System message required') }}" +
      '{% endif %}',
  ));
  assert.throws(
    () => t.render({ messages: [{ role: 'user', content: 'x' }] }),
    (error: unknown) =>
      error instanceof ChatTemplateError && error instanceof BadRequestError &&
      error.status === 400 &&
      error.message === 'Chat template failed to render: System message required',
  );
});

test('loadChatTemplate() rejects a missing or unparsable template', () => {
  assert.throws(() => loadChatTemplate('{}'), MissingChatTemplateError);
  assert.throws(
    () => loadChatTemplate(configWith('{% if %}')),
    (error: unknown) =>
      error instanceof ChatTemplateLoadError && /Chat template "default" is not valid Jinja/
        .test(error.message),
  );
  assert.throws(() => loadChatTemplate('not json'), ChatTemplateLoadError);
});
