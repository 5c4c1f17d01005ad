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
  if (DTD.test(body)) return reject(400, 'dtd_refused', 'XML with a DTD or entity declarations is refused');
  let parsed: unknown;
  try {
    parsed = parser.parse(body);
  } catch {
    return reject(400, 'not_xml', 'the body is not XML');
  }
  const root = (parsed as Record<string, unknown> | undefined)?.['xml'];
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    return reject(400, 'not_xml', 'the body is not a WeChat <xml> document');
  }
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(root)) {
    if (typeof value === 'string') fields[name] = value;
  }
  return fields;
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
}

export type ParsedMessage = FollowMessage | IgnoredMessage;

const KNOWN_EVENTS = new Set(['subscribe', 'unsubscribe', 'SCAN', 'LOCATION', 'CLICK', 'VIEW', 'TEMPLATESENDJOBFINISH', 'MASSSENDJOBFINISH']);
const KNOWN_MESSAGES = new Set(['text', 'image', 'voice', 'video', 'shortvideo', 'location', 'link', 'file']);

export function classifyMessage(fields: XmlFields): ParsedMessage | Rejection {
  const required = ['ToUserName', 'FromUserName', 'CreateTime', 'MsgType'] as const;
  const missing = required.filter((name) => (fields[name] ?? '') === '');
  if (missing.length > 0) return reject(400, 'missing_field', `missing ${missing.join(', ')}`);
  const createTime = fields['CreateTime'] ?? '';
  if (!CREATE_TIME.test(createTime)) return reject(400, 'invalid_field', 'CreateTime is not a Unix time in seconds');
  const msgType = fields['MsgType'] ?? '';
  if (msgType !== 'event') {
    // Labels come from a fixed set so a hostile sender cannot grow the metric's label space.
    return { kind: 'ignored', what: KNOWN_MESSAGES.has(msgType) ? msgType : 'other' };
  }
  const event = fields['Event'] ?? '';
  if (event === '') return reject(400, 'missing_field', 'missing Event');
  if (event !== 'subscribe' && event !== 'unsubscribe') {
    return { kind: 'ignored', what: `event:${KNOWN_EVENTS.has(event) ? event : 'other'}` };
  }
  const eventKey = fields['EventKey'];
  const ticket = fields['Ticket'];
  return {
    kind: 'follow',
    type: event,
    openid: fields['FromUserName'] ?? '',
    createTime: Number(createTime),
    ...(eventKey === undefined || eventKey === '' ? {} : { eventKey }),
    ...(ticket === undefined || ticket === '' ? {} : { ticket }),
  };
}
