import { XMLParser } from 'fast-xml-parser';
import { Rejection, reject } from './rejection.ts';

/**
 * WeChat's XML (wechat-protocol.md §5.2) → a follow event, a message that changes no follower, or a
 * rejection. Pure: no I/O, no clock.
 */

// No entity is ever expanded (processEntities/htmlEntities off), and documents with a DTD are refused
// before the parser sees them: WeChat never sends one, and a DTD is how entity bombs and external
// entities get in.
const parser = new XMLParser({
  processEntities: false,
  htmlEntities: false,
  ignoreAttributes: true,
  parseTagValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
});
const DTD = /<!(DOCTYPE|ENTITY)/i;
const CREATE_TIME = /^\d{1,12}$/;

export type XmlFields = Readonly<Record<string, string>>;

/** The children of the `<xml>` root that hold text; nested or repeated elements are left out. */
export function parseXmlFields(body: string): XmlFields | Rejection {
  // A document the one-pass reader takes has no markup outside its elements, so no DTD: a `<!DOCTYPE` it
  // holds is CDATA text (a user's message, say), which is never parsed.
  const flat = scanFlatXml(body);
  if (flat !== undefined) return flat;
  if (DTD.test(body)) return reject('dtd_refused');
  let parsed: unknown;
  try {
    parsed = parser.parse(body);
  } catch {
    return reject('not_xml');
  }
  const root = (parsed as Record<string, unknown> | undefined)?.['xml'];
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    return reject('not_xml');
  }
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(root)) {
    if (typeof value === 'string') fields[name] = value;
  }
  return fields;
}

const ELEMENT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const CDATA_OPEN = '<![CDATA[';

function skipSpace(text: string, at: number): number {
  let i = at;
  for (let c = text.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(++i));
  return i;
}

/**
 * The shape WeChat sends, read in one pass without the general parser (which costs more than decrypting
 * the push): `<xml>` holding distinct elements of plain text or one CDATA section each, and only whitespace
 * around. Anything else (a declaration, comment, attribute, nesting, a repeat, mixed content) gives
 * undefined and is left to the general parser. What this accepts, it reads exactly as the general parser
 * does (test/producers/callback/parse.test.ts compares the two).
 */
export function scanFlatXml(body: string): XmlFields | undefined {
  let at = skipSpace(body, 0);
  if (!body.startsWith('<xml>', at)) return undefined;
  at += '<xml>'.length;
  const fields: Record<string, string> = {};
  let empty = true;
  for (;;) {
    at = skipSpace(body, at);
    // An empty root is text to the general parser, not an element: it refuses the document.
    if (body.startsWith('</xml>', at)) return !empty && skipSpace(body, at + '</xml>'.length) === body.length ? fields : undefined;
    if (body[at] !== '<') return undefined;
    const open = body.indexOf('>', at);
    if (open < 0) return undefined;
    const name = body.slice(at + 1, open);
    // Names an object already has (toString, constructor) are the general parser's to rename or refuse.
    if (!ELEMENT_NAME.test(name) || name in fields || name === 'prototype') return undefined;
    let value: string;
    let end: number;
    if (body.startsWith(CDATA_OPEN, open + 1)) {
      const close = body.indexOf(']]>', open + 1 + CDATA_OPEN.length);
      if (close < 0) return undefined;
      value = body.slice(open + 1 + CDATA_OPEN.length, close);
      end = close + ']]>'.length;
    } else {
      end = body.indexOf('<', open + 1);
      if (end < 0) return undefined;
      value = body.slice(open + 1, end).trim();
    }
    const closing = `</${name}>`;
    // A CR is line-end normalised by the general parser: such a value is left to it.
    if (!body.startsWith(closing, end) || value.includes('\r')) return undefined;
    fields[name] = value;
    empty = false;
    at = end + closing.length;
  }
}

export interface FollowMessage {
  readonly kind: 'follow';
  readonly type: 'subscribe' | 'unsubscribe';
  readonly openid: string;
  readonly createTime: number;
  readonly eventKey?: string;
  readonly ticket?: string;
}

/** SCAN, other events and user messages: answered `success`, counted, and change no follower. */
export interface IgnoredMessage {
  readonly kind: 'ignored';
  /** `event:<Event>` or the MsgType, for the metric label. */
  readonly what: string;
  /** Unix seconds: checked against the clock like a follow's, so no replay is answered `success`. */
  readonly createTime: number;
}

export type ParsedMessage = FollowMessage | IgnoredMessage;

const KNOWN_EVENTS = new Set(['subscribe', 'unsubscribe', 'SCAN', 'LOCATION', 'CLICK', 'VIEW', 'TEMPLATESENDJOBFINISH', 'MASSSENDJOBFINISH']);
const KNOWN_MESSAGES = new Set(['text', 'image', 'voice', 'video', 'shortvideo', 'location', 'link', 'file']);

export function classifyMessage(fields: XmlFields): ParsedMessage | Rejection {
  const required = ['ToUserName', 'FromUserName', 'CreateTime', 'MsgType'] as const;
  if (required.some((name) => (fields[name] ?? '') === '')) return reject('missing_field');
  const createTime = fields['CreateTime'] ?? '';
  if (!CREATE_TIME.test(createTime)) return reject('invalid_field');
  const seconds = Number(createTime);
  const msgType = fields['MsgType'] ?? '';
  if (msgType !== 'event') {
    // Labels come from a fixed set so a hostile sender cannot grow the metric's label space.
    return { kind: 'ignored', what: KNOWN_MESSAGES.has(msgType) ? msgType : 'other', createTime: seconds };
  }
  const event = fields['Event'] ?? '';
  if (event === '') return reject('missing_field');
  if (event !== 'subscribe' && event !== 'unsubscribe') {
    return { kind: 'ignored', what: `event:${KNOWN_EVENTS.has(event) ? event : 'other'}`, createTime: seconds };
  }
  const eventKey = fields['EventKey'];
  const ticket = fields['Ticket'];
  return {
    kind: 'follow',
    type: event,
    openid: fields['FromUserName'] ?? '',
    createTime: seconds,
    ...(eventKey === undefined || eventKey === '' ? {} : { eventKey }),
    ...(ticket === undefined || ticket === '' ? {} : { ticket }),
  };
}
