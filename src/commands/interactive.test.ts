import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInputAssembler, type InputStep } from './interactive.ts';

const feed = (lines: string[]): InputStep[] => {
  const assembler = createInputAssembler();
  return lines.map((line) => assembler.push(line));
};

test('createInputAssembler(): one line is one message', () => {
  assert.deepEqual(feed(['Hello']), [{ kind: 'message', text: 'Hello' }]);
});

test('createInputAssembler(): a trailing backslash continues the message on the next line', () => {
  assert.deepEqual(feed(['one\\', 'two\\', 'three']), [
    { kind: 'more' },
    { kind: 'more' },
    { kind: 'message', text: 'one\ntwo\nthree' },
  ]);
});

test('createInputAssembler(): """ opens and closes a block that keeps blank lines as they are', () => {
  assert.deepEqual(feed(['"""', 'a', '', '  b\\', '/clear', '"""']).at(-1), {
    kind: 'message',
    text: 'a\n\n  b\\\n/clear',
  });
});

test('createInputAssembler(): /word alone is a command, but not inside a message', () => {
  assert.deepEqual(feed(['/clear', ' /help ']), [
    { kind: 'command', name: 'clear' },
    { kind: 'command', name: 'help' },
  ]);
  assert.deepEqual(feed(['x\\', '/clear']).at(-1), { kind: 'message', text: 'x\n/clear' });
  assert.deepEqual(feed(['/usr/bin is a path']), [
    { kind: 'message', text: '/usr/bin is a path' },
  ]);
});

test('createInputAssembler(): reset() drops an unfinished message', () => {
  const assembler = createInputAssembler();
  assembler.push('"""');
  assembler.push('half');
  assembler.reset();
  assert.deepEqual(assembler.push('whole'), { kind: 'message', text: 'whole' });
});
