/**
 * A file content part -> the text the model reads (docs/preprocessing.md, "Files"). One
 * converter for both APIs: the Responses API's `input_file` and chat's `file` part carry the same
 * fields (`file_data`, `filename`, `file_id`, `file_url`). The file's text reaches the worker as
 * ordinary prompt text, after a `[file: NAME]` line:
 *
 *   - text files (`text/*`, JSON, CSV, Markdown, XML, YAML, ...; by the data URL's media type or
 *     the filename's extension): decoded as UTF-8;
 *   - PDFs: their text, extracted here (./pdf/text.ts).
 *
 * Refused with a 400 naming the field: `file_id` (there is no Files API) and `file_url` (the
 * frontend fetches nothing), images and other binary types, malformed base64, a file over the
 * media size limit (DYN_MULTIMODAL_MAX_MB) or text over the request's character limit, a PDF whose
 * text cannot be extracted.
 */
import { ValidationError } from '../errors.ts';
import { extractPdfText, PdfTextError } from './pdf/text.ts';

/** The fields of a file part (`input_file`, or chat's `file.file`). */
export interface FileInput {
  filename?: string | null;
  file_data?: string | null;
  file_id?: string | null;
  file_url?: string | null;
}

export interface FileTextOptions {
  /** Where the part's fields sit in the request: `input[0].content[1]`, `messages[0].content[1].file`. */
  param: string;
  /** Largest decoded file, in bytes. */
  maxBytes: number;
  /** Longest text a file may give, in characters. */
  maxChars: number;
}

const TEXT_TYPES = new Set([
  'application/json',
  'application/ld+json',
  'application/x-ndjson',
  'application/jsonl',
  'application/xml',
  'application/yaml',
  'application/x-yaml',
  'application/toml',
  'application/csv',
  'application/javascript',
  'application/typescript',
  'application/x-sh',
  'application/sql',
  'application/x-tex',
]);

const TEXT_EXTENSIONS = new Set([
  'txt',
  'text',
  'md',
  'markdown',
  'csv',
  'tsv',
  'json',
  'jsonl',
  'ndjson',
  'xml',
  'yaml',
  'yml',
  'toml',
  'ini',
  'log',
  'html',
  'htm',
  'css',
  'js',
  'mjs',
  'ts',
  'tsx',
  'jsx',
  'py',
  'rb',
  'go',
  'rs',
  'java',
  'kt',
  'c',
  'h',
  'cc',
  'cpp',
  'hpp',
  'cs',
  'php',
  'sh',
  'sql',
  'tex',
  'rst',
]);

/** What a file is, from its media type or else its name. */
type Kind = { kind: 'pdf' | 'text' } | { kind: 'other'; type: string; field: string };

function kindOf(
  mime: string,
  filename: string | undefined,
  bytes: Uint8Array,
  param: string,
): Kind {
  if (mime !== '' && mime !== 'application/octet-stream') {
    if (mime === 'application/pdf') return { kind: 'pdf' };
    if (mime.startsWith('text/') || TEXT_TYPES.has(mime)) return { kind: 'text' };
    return { kind: 'other', type: mime, field: `${param}.file_data` };
  }
  const ext = /\.([A-Za-z0-9]+)$/.exec(filename ?? '')?.[1]?.toLowerCase();
  if (ext === 'pdf') return { kind: 'pdf' };
  if (ext !== undefined && TEXT_EXTENSIONS.has(ext)) return { kind: 'text' };
  if (ext !== undefined) return { kind: 'other', type: `.${ext}`, field: `${param}.filename` };
  // Neither says: a PDF shows itself by its header; anything else needs a name or a type.
  if (new TextDecoder('latin1').decode(bytes.subarray(0, 1024)).includes('%PDF-')) {
    return { kind: 'pdf' };
  }
  throw new ValidationError(
    `Cannot tell the type of the file in "${param}": give "filename" with an extension (.pdf, ` +
      '.txt, .md, .csv, .json, ...) or "file_data" as a data URL with a media type',
    { param: `${param}.filename` },
  );
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The bytes and media type of `file_data`: a data URL, or bare base64. */
function decodeData(data: string, param: string, maxBytes: number) {
  const field = `${param}.file_data`;
  let mime = '';
  let payload = data;
  let base64 = true;
  if (data.startsWith('data:')) {
    const comma = data.indexOf(',');
    if (comma < 0) {
      throw new ValidationError(`Invalid value for "${field}": a data URL needs a comma`, {
        param: field,
      });
    }
    const [type = '', ...flags] = data.slice(5, comma).split(';');
    mime = type.trim().toLowerCase();
    base64 = flags.some((f) => f.trim().toLowerCase() === 'base64');
    payload = data.slice(comma + 1);
  }
  let bytes: Uint8Array;
  if (base64) {
    const clean = payload.replace(/\s+/g, '');
    if (!BASE64.test(clean) || clean.length % 4 === 1) {
      throw new ValidationError(`Invalid value for "${field}": not valid base64`, { param: field });
    }
    const size = Math.floor(clean.length * 3 / 4) - (clean.match(/=+$/)?.[0].length ?? 0);
    checkSize(size, field, maxBytes);
    const binary = atob(clean.padEnd(Math.ceil(clean.length / 4) * 4, '='));
    bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  } else {
    try {
      bytes = new TextEncoder().encode(decodeURIComponent(payload));
    } catch {
      throw new ValidationError(`Invalid value for "${field}": the data URL is malformed`, {
        param: field,
      });
    }
    checkSize(bytes.length, field, maxBytes);
  }
  return { mime, bytes };
}

function checkSize(bytes: number, field: string, maxBytes: number) {
  if (bytes <= maxBytes) return;
  throw new ValidationError(
    `Invalid value for "${field}": the file is ${bytes} bytes, more than the ${maxBytes}-byte ` +
      'limit (DYN_MULTIMODAL_MAX_MB)',
    { param: field },
  );
}

function utf8Text(bytes: Uint8Array, name: string, field: string): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (!text.includes('\u0000')) return text;
  } catch {
    // not UTF-8: refused below
  }
  throw new ValidationError(
    `Invalid value for "${field}": the file "${name}" is not UTF-8 text (only PDFs and text ` +
      'files are read)',
    { param: field },
  );
}

function refuseType(type: string, field: string, param: string): never {
  const image = type.startsWith('image/') ||
    /^\.(png|jpe?g|gif|webp|bmp|tiff?|heic|svg)$/.test(type);
  throw new ValidationError(
    `Unsupported file type "${type}" in "${param}": file inputs take PDFs and text files ` +
      '(text/*, JSON, CSV, Markdown, XML, YAML, source code)' +
      (image ? '; send images as an image part (input_image, or image_url in chat)' : ''),
    { param: field },
  );
}

/** The text a file part gives the model: `[file: NAME]` and the file's text. */
export async function fileInputText(file: FileInput, options: FileTextOptions): Promise<string> {
  const { param } = options;
  const data = file.file_data;
  if (typeof data !== 'string' || data === '') {
    if (typeof file.file_id === 'string' && file.file_id !== '') {
      throw new ValidationError(
        `"${param}.file_id" is not supported: this server has no Files API; send the file's ` +
          'content in "file_data" (a base64 data URL) with its "filename"',
        { param: `${param}.file_id` },
      );
    }
    if (typeof file.file_url === 'string' && file.file_url !== '') {
      throw new ValidationError(
        `"${param}.file_url" is not supported: this server does not fetch files; send the ` +
          `file's content in "file_data" (a base64 data URL) with its "filename"`,
        { param: `${param}.file_url` },
      );
    }
    throw new ValidationError(`Missing required parameter "${param}.file_data"`, {
      param: `${param}.file_data`,
    });
  }
  const field = `${param}.file_data`;
  // One line of name: control characters (a newline would forge the header) become spaces.
  // deno-lint-ignore no-control-regex
  const clean = (file.filename ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  const filename = clean === '' ? undefined : clean;
  const { mime, bytes } = decodeData(data, param, options.maxBytes);
  const kind = kindOf(mime, filename, bytes, param);
  if (kind.kind === 'other') refuseType(kind.type, kind.field, param);
  const name = filename ?? (kind.kind === 'pdf' ? 'file.pdf' : 'file.txt');
  let text: string;
  if (kind.kind === 'text') text = utf8Text(bytes, name, field);
  else {
    try {
      text = await extractPdfText(bytes, { maxChars: options.maxChars });
    } catch (error) {
      const reason = error instanceof PdfTextError ? error.message : 'it is malformed';
      throw new ValidationError(
        `Could not extract the text of the PDF "${name}" in "${param}": ${reason}`,
        { param: field, cause: error },
      );
    }
  }
  if (text.length > options.maxChars) {
    throw new ValidationError(
      `Invalid value for "${field}": the file "${name}" has ${text.length} characters of text, ` +
        `more than the limit of ${options.maxChars} (--http-max-request-chars, ` +
        'DYN_HTTP_MAX_REQUEST_CHARS)',
      { param: field },
    );
  }
  return `[file: ${name}]\n${text}`;
}
