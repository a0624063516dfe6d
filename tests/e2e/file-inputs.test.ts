/**
 * File inputs end to end, through the real frontend and the official `openai` client: a PDF or
 * text file sent as chat's `file` part or the Responses API's `input_file` reaches the simulated
 * worker as prompt text (a `[file: NAME]` line, then the file's text). The worker answers from
 * a script that quotes what follows that line in the prompt it decoded, so each answer shows
 * what the worker saw. Refusals come back as OpenAI errors the SDK raises.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { currentRuntime } from '../helpers/process.ts';
import { textPdf } from '../helpers/pdf.ts';
import { MODEL, type Stack, startStack } from '../helpers/stack.ts';
import { tempDir } from './_workers.ts';

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const pdfUrl = async (lines: string[], flate = false) =>
  `data:application/pdf;base64,${
    b64(
      await textPdf([`BT /F1 12 Tf 72 700 Td ${lines.map((l) => `(${l}) '`).join(' ')} ET`], {
        flate,
      }),
    )
  }`;

async function badRequest(promise: Promise<unknown>, param: string, message: RegExp) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.param, param);
    assert.match(e.message, message);
    return true;
  });
}

describe(`file inputs on ${currentRuntime()}`, { timeout: 120_000 }, () => {
  let stack: Stack;
  let openai: OpenAI;
  before(async () => {
    const script = join(await tempDir('file-script'), 'script.json');
    // Quotes the file's name and its first two lines of text, as the worker decoded them.
    await writeFile(
      script,
      JSON.stringify({
        rules: [{
          match: '\\[file: ([^\\]\\n]+)\\]\\n([^\\n<]*)\\n?([^\\n<]*)',
          output: 'saw $1: $2 / $3',
        }],
      }),
    );
    stack = await startStack({ mockers: [{ args: ['--script', script] }] });
    openai = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await stack?.close();
  });

  test('chat: a PDF file part reaches the worker as its text', async () => {
    const done = await openai.chat.completions.create({
      model: MODEL,
      messages: [{
        role: 'user',
        content: [
          { type: 'text', text: 'What is the title?' },
          {
            type: 'file',
            file: { filename: 'report.pdf', file_data: await pdfUrl(['Annual report', 'Page 1']) },
          },
        ],
      }],
    });
    assert.equal(done.choices[0]!.message.content, 'saw report.pdf: Annual report / Page 1');
  });

  test('chat, streamed: a text file (bare base64, typed by its extension)', async () => {
    const stream = await openai.chat.completions.create({
      model: MODEL,
      stream: true,
      messages: [{
        role: 'user',
        content: [{
          type: 'file',
          file: { filename: 'notes.md', file_data: btoa('# Notes\nbuy milk') },
        }],
      }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'saw notes.md: # Notes / buy milk');
  });

  test('responses: input_file with a compressed PDF, unary and streamed', async () => {
    const input = [{
      type: 'message' as const,
      role: 'user' as const,
      content: [
        { type: 'input_text' as const, text: 'Answer with the title only.' },
        {
          type: 'input_file' as const,
          filename: 'fixture.pdf',
          file_data: await pdfUrl(['Title: File Input Fixture', 'Second line'], true),
        },
      ],
    }];
    const response = await openai.responses.create({ model: MODEL, input, store: false });
    assert.equal(response.status, 'completed');
    assert.equal(response.output_text, 'saw fixture.pdf: Title: File Input Fixture / Second line');
    const stream = await openai.responses.create({ model: MODEL, input, stream: true });
    let text = '';
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    assert.equal(text, 'saw fixture.pdf: Title: File Input Fixture / Second line');
  });

  test('refusals are OpenAI errors naming the part: file_id, an image, an unreadable PDF', async () => {
    await badRequest(
      openai.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-123' } }] }],
      }),
      'messages[0].content[0].file.file_id',
      /no Files API/,
    );
    await badRequest(
      openai.responses.create({
        model: MODEL,
        input: [{
          role: 'user',
          content: [
            { type: 'input_text', text: 'Look' },
            { type: 'input_file', filename: 'a.png', file_data: 'data:image/png;base64,iVBORw==' },
          ],
        }],
      }),
      'input[0].content[1].file_data',
      /Unsupported file type "image\/png"/,
    );
    const cid = await textPdf(['BT /F1 12 Tf <0041> Tj ET'], {
      font: '<< /Type /Font /Subtype /Type0 /BaseFont /Mincho /Encoding /Identity-H >>',
    });
    await badRequest(
      openai.responses.create({
        model: MODEL,
        input: [{
          role: 'user',
          content: [{
            type: 'input_file',
            filename: 'cid.pdf',
            file_data: `data:application/pdf;base64,${b64(cid)}`,
          }],
        }],
      }),
      'input[0].content[0].file_data',
      /Could not extract the text of the PDF "cid\.pdf"/,
    );
  });
});
