/**
 * Data Hub protocol frames: JSON objects with a `type`, exchanged on an
 * already-secured channel (a SecureChannel to a peer, or loopback between a
 * local app and its node). These zod schemas are the single source of truth;
 * the TypeScript types are inferred from them.
 *
 * Directions: `ToHubFrame` goes from an app or a client node to a hub (and from
 * a local app to its node, which speaks the same protocol); `FromHubFrame`
 * goes back. Unknown fields are ignored (stripped), so a newer peer may add
 * fields without breaking an older one; unknown types and broken limits are refused.
 *
 * Publishers name each pub/set with (origin, seq): `origin` must be unique per
 * run of the publisher (e.g. app name + random boot id) and `seq` must rise by
 * publisher. The hub and client nodes de-duplicate on that pair, so a frame
 * resent after a server switch is delivered once.
 */
import { z } from "zod";
import { MAX_TOPIC_LENGTH, filterProblem, topicProblem } from "../core/topics.ts";
import { InvalidFrame } from "./hub-errors.ts";
import { DEFAULT_MAX_JSON_DEPTH, nestingExceeds, readWireJson, utf8ByteLength } from "../core/wire-json.ts";

export { utf8ByteLength };

/** `data` of pub/call/reply and `value` of set, measured as UTF-8 JSON. */
export const MAX_DATA_BYTES = 64 * 1024;
/**
 * How deep `data` (and a retained `value`) may nest. Well under the wire's own limit
 * (DEFAULT_MAX_JSON_DEPTH), so every frame that carries it onwards (a `msg`, a retained
 * change in a replication batch, a few levels deeper) still passes every hop: a value one
 * hop refuses is refused by the node that took it from the app, at once, with the reason.
 */
export const MAX_DATA_DEPTH = 32;
/** One frame's text before parsing: the data plus room for the other fields. */
export const MAX_FRAME_BYTES = MAX_DATA_BYTES + 4 * 1024;
/** Members listed in one presence frame (a studio network has tens). */
export const MAX_PRESENCE_MEMBERS = 4096;
/** Frames from a hub may be larger: a presence frame lists up to MAX_PRESENCE_MEMBERS members. */
export const MAX_FROM_HUB_FRAME_BYTES = 2 * 1024 * 1024;
/** origin, call/get ids, member ids. */
export const MAX_ID_LENGTH = 128;
export const MAX_NAME_LENGTH = 128;
export const MAX_SERVICE_LENGTH = 128;
export const MAX_MESSAGE_LENGTH = 1024;
export { MAX_TOPIC_LENGTH };

// ---------------------------------------------------------------- pieces

const problemCheck = (problem: (s: string) => string | null) =>
  z.string().superRefine((text, ctx) => {
    const found = problem(text);
    if (found) ctx.addIssue({ code: "custom", message: found });
  });

const topic = problemCheck(topicProblem);
const filter = problemCheck(filterProblem);
const id = z.string().min(1, "must not be empty").max(MAX_ID_LENGTH, `at most ${MAX_ID_LENGTH} characters`);
const name = z.string().max(MAX_NAME_LENGTH, `at most ${MAX_NAME_LENGTH} characters`);
const service = z.string().min(1, "must not be empty").max(MAX_SERVICE_LENGTH, `at most ${MAX_SERVICE_LENGTH} characters`);
const seq = z.number().int("must be a whole number").min(1, "must be at least 1").max(Number.MAX_SAFE_INTEGER);
const message = z.string().max(MAX_MESSAGE_LENGTH);

const TOO_DEEP = `must nest at most ${MAX_DATA_DEPTH} levels deep`;

/** Any JSON value of at most MAX_DATA_BYTES and MAX_DATA_DEPTH (undefined, functions, cycles and BigInt are refused). */
const jsonData = z.unknown().superRefine((value, ctx) => {
  const problem = dataProblem(value);
  if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
});

function dataProblem(value: unknown): string | null {
  const text = jsonText(value);
  if (text === null) return "must be a JSON value";
  const size = utf8ByteLength(text);
  if (size > MAX_DATA_BYTES) return `must be at most ${MAX_DATA_BYTES / 1024} KiB of JSON (got ${size} bytes)`;
  return nestingExceeds(text, MAX_DATA_DEPTH) ? TOO_DEEP : null;
}

/**
 * `jsonData` for a value JSON.parse just made from a short text: it is JSON by construction, its
 * JSON cannot exceed MAX_DATA_BYTES (see SMALL_TEXT_BYTES), and its text nests at most one level
 * more than MAX_DATA_DEPTH (parseWith), so only a missing field is refused. Measuring it again cost
 * a stringify per frame at every hop.
 */
const parsedJsonData = z.unknown().refine((value) => value !== undefined, "must be a JSON value");

/**
 * Texts up to this size carry data whose JSON is at most MAX_DATA_BYTES. Re-encoding a parsed value
 * grows no part of it more than 6 times: strings keep their length or shrink (a lone surrogate, 2
 * bytes as counted here, becomes a 6-byte escape: 3 times), numbers grow the most ("1e20" becomes
 * 21 digits: 5.25 times).
 */
export const SMALL_TEXT_BYTES = Math.floor(MAX_DATA_BYTES / 6);

export const versionSchema = z.object({
  epoch: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
/** Order of retained writes across servers: epoch first, then the hub's seq within it. (0, 0) = never written. */
export type Version = z.infer<typeof versionSchema>;

export const remoteErrorSchema = z.object({ code: z.string().min(1).max(64), message });
export type RemoteError = z.infer<typeof remoteErrorSchema>;

export const memberKindSchema = z.enum(["app", "node"]);
export type MemberKind = z.infer<typeof memberKindSchema>;

// ---------------------------------------------------------------- to a hub

const epoch = z.number().int("must be a whole number").min(0, "must be at least 0").max(Number.MAX_SAFE_INTEGER);
/**
 * `resumeFromEpoch`: the epoch of the hub this connection followed before (from its `welcome`),
 * absent on a first attach. Lower than the hub's epoch, it asks for a replay of what this hub
 * accepted in its epoch: the hub then holds back live messages until `resync` (see below).
 */
/** A position in a hub's message stream (its replay ring): 0 before the first message, then 1, 2, ... */
const position = z.number().int("must be a whole number").min(0, "must be at least 0").max(Number.MAX_SAFE_INTEGER);
/** Names one run of one hub's replay ring (new on every start and every epoch): positions compare only within it. */
const streamId = z.string().min(1).max(64);
/**
 * `resumeStream` and `resumeFromPos` (from the last `welcome` and `msg` positions): the node
 * reconnects to the hub it followed, at the same epoch, and asks only for what came after.
 */
export const helloFrame = z.object({
  type: z.literal("hello"),
  id,
  name,
  kind: memberKindSchema,
  resumeFromEpoch: epoch.optional(),
  resumeStream: streamId.optional(),
  resumeFromPos: position.optional(),
});
/**
 * Sent after the `sub`s that follow a hello with `resumeFromEpoch`: the hub replays the messages
 * of its epoch that match the connection's filters, in the order it accepted them, then goes live.
 * Ignored otherwise.
 */
export const resyncFrame = z.object({ type: z.literal("resync") });
/** `delayMs` is the sender's last measured round trip (from `pong`), shown in presence. */
export const pingFrame = z.object({ type: z.literal("ping"), sentAt: z.number(), delayMs: z.number().min(0).nullish() });
export const subFrame = z.object({ type: z.literal("sub"), filter });
export const unsubFrame = z.object({ type: z.literal("unsub"), filter });
export const pubFrame = z.object({ type: z.literal("pub"), topic, data: jsonData, origin: id, seq });
/**
 * Retained write; `value: null` deletes the key. `acked`: a node resending a set another hub
 * already acknowledged (after a switch) names the version that hub gave it, so the write applies
 * only over older ones (apps do not send it; their node drops it).
 */
export const setFrame = z.object({ type: z.literal("set"), key: topic, value: jsonData, origin: id, seq, acked: versionSchema.optional() });
export const getFrame = z.object({ type: z.literal("get"), key: topic, id });
export const offerFrame = z.object({ type: z.literal("offer"), service });
export const unofferFrame = z.object({ type: z.literal("unoffer"), service });
export const callFrame = z.object({ type: z.literal("call"), service, id, data: jsonData });
/** Answer to a `call` (same `id` as the call received); `error` when the service failed. */
export const replyFrame = z.object({ type: z.literal("reply"), id, data: jsonData.optional(), error: remoteErrorSchema.optional() });

const toHubSchemas = {
  hello: helloFrame,
  ping: pingFrame,
  sub: subFrame,
  unsub: unsubFrame,
  resync: resyncFrame,
  pub: pubFrame,
  set: setFrame,
  get: getFrame,
  offer: offerFrame,
  unoffer: unofferFrame,
  call: callFrame,
  reply: replyFrame,
} as const;

/** The same schemas for a frame parsed from a text of at most SMALL_TEXT_BYTES. */
export const toHubSchemasForSmallText = {
  ...toHubSchemas,
  pub: pubFrame.extend({ data: parsedJsonData }),
  set: setFrame.extend({ value: parsedJsonData }),
  call: callFrame.extend({ data: parsedJsonData }),
  reply: replyFrame.extend({ data: parsedJsonData.optional() }),
} as const;

export const toHubFrameSchema = z.discriminatedUnion("type", [
  helloFrame,
  pingFrame,
  subFrame,
  unsubFrame,
  resyncFrame,
  pubFrame,
  setFrame,
  getFrame,
  offerFrame,
  unofferFrame,
  callFrame,
  replyFrame,
]);
export type ToHubFrame = z.infer<typeof toHubFrameSchema>;
export type ToHubFrameOf<T extends ToHubFrame["type"]> = Extract<ToHubFrame, { type: T }>;

// ---------------------------------------------------------------- from a hub

/**
 * The hub's answer to `hello`, before anything else: its epoch, which the node sends back as
 * `resumeFromEpoch` to the next hub, and its message stream and position at this moment, which
 * the node sends back (with the last position it received) when it reconnects to this hub.
 */
export const welcomeFrame = z.object({ type: z.literal("welcome"), epoch, stream: streamId.optional(), pos: position.optional() });
/** A published message; `from`/`seq` are the publisher's origin and seq (for de-duplication), `pos` its place in the hub's stream. */
export const msgFrame = z.object({ type: z.literal("msg"), topic, data: jsonData, from: id, seq, pos: position.optional() });
/** Messages this node missed and the hub no longer holds (its replay ring dropped them): said, never silent. */
export const gapFrame = z.object({ type: z.literal("gap"), missed: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), message });
/**
 * The pub/set (origin, seq) was accepted, or was a duplicate of one already accepted. Only then may
 * a node drop it from its queue (it keeps it a while longer, acked-writes.ts). `version`: the one a
 * set was written at, which the node names as `acked` if it resends the set to another hub.
 */
export const ackFrame = z.object({ type: z.literal("ack"), origin: id, seq, version: versionSchema.optional() });
/** A retained value: the answer to `get` (carries its `id`) or a change pushed to matching subscriptions (no `id`). */
export const valueFrame = z.object({ type: z.literal("value"), key: topic, value: jsonData, version: versionSchema, id: id.optional() });
/** A call forwarded to the connection offering the service; `from` is the caller's member id. */
export const incomingCallFrame = z.object({ type: z.literal("call"), service, id, data: jsonData, from: id });
export const memberSchema = z.object({ id, name, kind: memberKindSchema, delayMs: z.number().min(0).nullable() });
export type Member = z.infer<typeof memberSchema>;
export const presenceFrame = z.object({ type: z.literal("presence"), members: z.array(memberSchema).max(MAX_PRESENCE_MEMBERS) });
export const pongFrame = z.object({ type: z.literal("pong"), sentAt: z.number() });
/** What a refused frame was, so the sender can match the error to it. */
export const errorRefSchema = z.object({
  type: z.string().max(32),
  origin: id.optional(),
  seq: z.number().optional(),
  id: id.optional(),
  filter: z.string().max(MAX_TOPIC_LENGTH).optional(),
  key: z.string().max(MAX_TOPIC_LENGTH).optional(),
  service: z.string().max(MAX_SERVICE_LENGTH).optional(),
});
export type ErrorRef = z.infer<typeof errorRefSchema>;
export const errorFrameSchema = z.object({ type: z.literal("error"), code: z.string().min(1).max(64), message, ref: errorRefSchema.optional() });

const fromHubSchemas = {
  welcome: welcomeFrame,
  msg: msgFrame,
  ack: ackFrame,
  value: valueFrame,
  call: incomingCallFrame,
  reply: replyFrame,
  presence: presenceFrame,
  pong: pongFrame,
  gap: gapFrame,
  error: errorFrameSchema,
} as const;

export const fromHubSchemasForSmallText = {
  ...fromHubSchemas,
  msg: msgFrame.extend({ data: parsedJsonData }),
  value: valueFrame.extend({ value: parsedJsonData }),
  call: incomingCallFrame.extend({ data: parsedJsonData }),
  reply: replyFrame.extend({ data: parsedJsonData.optional() }),
} as const;

export const fromHubFrameSchema = z.discriminatedUnion("type", [
  welcomeFrame,
  msgFrame,
  ackFrame,
  valueFrame,
  incomingCallFrame,
  replyFrame,
  presenceFrame,
  pongFrame,
  gapFrame,
  errorFrameSchema,
]);
export type FromHubFrame = z.infer<typeof fromHubFrameSchema>;
export type FromHubFrameOf<T extends FromHubFrame["type"]> = Extract<FromHubFrame, { type: T }>;
export type ErrorFrame = FromHubFrameOf<"error">;

// ---------------------------------------------------------------- parsing

export type ParsedFrame<F> = { ok: true; frame: F } | { ok: false; error: InvalidFrame; ref?: ErrorRef };

/**
 * Parses a frame sent to a hub: JSON text (as read from the channel) or an already-parsed value. Never throws.
 * `dataMeasured`: its data is JSON within the limits by construction (mqtt-payload.ts measuredData), not measured again.
 */
export function parseToHubFrame(input: unknown, dataMeasured = false): ParsedFrame<ToHubFrame> {
  return parseWith("to hub", toHubSchemas, toHubSchemasForSmallText, input, MAX_FRAME_BYTES, dataMeasured) as ParsedFrame<ToHubFrame>;
}

/** Parses a frame sent by a hub (a node checks what the server sends, too). Never throws. */
export function parseFromHubFrame(input: unknown): ParsedFrame<FromHubFrame> {
  return parseWith("from hub", fromHubSchemas, fromHubSchemasForSmallText, input, MAX_FROM_HUB_FRAME_BYTES) as ParsedFrame<FromHubFrame>;
}

/** The text the adapter seals: encode once, even for a frame going to many connections. */
export function encodeFrame(frame: ToHubFrame | FromHubFrame): string {
  return JSON.stringify(frame);
}

export function errorFrame(error: { code: string; message: string }, ref?: ErrorRef): ErrorFrame {
  const message = error.message.length > MAX_MESSAGE_LENGTH ? `${error.message.slice(0, MAX_MESSAGE_LENGTH - 3)}...` : error.message;
  return ref ? { type: "error", code: error.code, message, ref } : { type: "error", code: error.code, message };
}

type Schemas = Record<string, z.ZodType>;

function parseWith(direction: Direction, schemas: Schemas, forSmallText: Schemas, input: unknown, maxBytes: number, dataMeasured = false): ParsedFrame<unknown> {
  let value = input;
  let short = dataMeasured;
  if (typeof input === "string") {
    // A UTF-16 unit is at most 3 UTF-8 bytes: a frame that short needs no count (most of them, at every hop).
    const small = input.length * 3 <= SMALL_TEXT_BYTES;
    const size = small ? 0 : utf8ByteLength(input);
    if (size > maxBytes) return refuse(`Frame refused: ${size} bytes is more than the ${maxBytes} a frame may have.`);
    // A frame nests one level above its data: deeper text is read once more, within the wire's limit, only to name the refused frame.
    if (nestingExceeds(input, MAX_DATA_DEPTH + 1)) return refuse(`Frame refused: its data ${TOO_DEEP}.`, refOf(readText(input, maxBytes)));
    // Size and nesting are checked above: JSON.parse is what readWireJson would do after checking them again.
    try {
      value = JSON.parse(input);
    } catch {
      return refuse("Frame refused: it is not valid JSON.");
    }
    short = small || size <= SMALL_TEXT_BYTES;
  }
  if (short) schemas = forSmallText;
  const common = readCommonFrame(value, direction, short);
  if (common) return { ok: true, frame: common };
  if (typeof value !== "object" || value === null || Array.isArray(value)) return refuse("Frame refused: a frame must be a JSON object with a \"type\".");
  const type = (value as { type?: unknown }).type;
  // Looked up directly rather than through the union: faster, and the message can name the known types.
  const schema = typeof type === "string" && Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (!schema) {
    const shown = typeof type === "string" ? `"${type.slice(0, 32)}"` : String(type);
    return refuse(`Frame refused: unknown type ${shown}; expected one of ${Object.keys(schemas).join(", ")}.`, refOf(value));
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? `, field "${issue.path.join(".")}"` : "";
  return refuse(`Frame "${type}" refused${where}: ${issue?.message ?? "invalid"}.`, refOf(value));
}

// ---------------------------------------------------------------- the common frames, before zod

type Direction = "to hub" | "from hub";

/**
 * `pub`, `msg`, `ack` and `presence`, checked by hand: zod cost a tenth of a server's time per frame. It only
 * ever accepts, giving what the schema gives (known fields in its order, the rest stripped, an
 * optional one present as undefined left to the schema); anything it does not accept goes to the
 * schema, which refuses it with its own message. `short`: parsed from a text of at most
 * SMALL_TEXT_BYTES, so the data needs no measuring (see parsedJsonData).
 * test/unit/fuzz/frames-fast-path.test.ts compares the two on random and hostile frames.
 */
export function readCommonFrame(value: unknown, direction: Direction, short: boolean): FromHubFrame | ToHubFrame | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  // Each field read once, as the schema reads it (a getter of an in-process frame could change).
  const v = value as Record<string, unknown>;
  const type = v.type;
  if (direction === "to hub" ? type !== "pub" : type !== "msg" && type !== "ack" && type !== "presence") return null;
  if (type === "presence") return readPresence(v.members);
  if (type === "ack") {
    const [origin, seq, version] = [v.origin, v.seq, v.version];
    if (!isId(origin) || !isSeq(seq)) return null;
    if (version === undefined) return "version" in v ? null : { type, origin, seq };
    if (typeof version !== "object" || version === null || Array.isArray(version)) return null;
    const [epoch, versionSeq] = [(version as Record<string, unknown>).epoch, (version as Record<string, unknown>).seq];
    return isCount(epoch) && isCount(versionSeq) ? { type, origin, seq, version: { epoch, seq: versionSeq } } : null;
  }
  const topic = v.topic;
  const data = v.data;
  if (!isTopic(topic) || !(short ? data !== undefined : dataProblem(data) === null)) return null;
  if (type === "pub") {
    const [origin, seq] = [v.origin, v.seq];
    return isId(origin) && isSeq(seq) ? { type, topic, data, origin, seq } : null;
  }
  const [from, seq, pos] = [v.from, v.seq, v.pos];
  if (!isId(from) || !isSeq(seq)) return null;
  if (pos === undefined) return "pos" in v ? null : { type: "msg", topic, data, from, seq };
  return isCount(pos) ? { type: "msg", topic, data, from, seq, pos } : null;
}

/** The members of a `presence` frame, as memberSchema gives them, or null. */
function readPresence(members: unknown): FromHubFrame | null {
  if (!Array.isArray(members) || members.length > MAX_PRESENCE_MEMBERS) return null;
  const read: Member[] = [];
  for (let i = 0; i < members.length; i++) {
    const m: unknown = members[i];
    if (typeof m !== "object" || m === null || Array.isArray(m)) return null;
    const { id, name, kind, delayMs } = m as Record<string, unknown>;
    if (!isId(id) || typeof name !== "string" || name.length > MAX_NAME_LENGTH || (kind !== "app" && kind !== "node")) return null;
    if (delayMs !== null && !(typeof delayMs === "number" && Number.isFinite(delayMs) && delayMs >= 0)) return null;
    read.push({ id, name, kind, delayMs });
  }
  return { type: "presence", members: read };
}

const isTopic = (x: unknown): x is string => typeof x === "string" && topicProblem(x) === null;
const isId = (x: unknown): x is string => typeof x === "string" && x.length >= 1 && x.length <= MAX_ID_LENGTH;
const isSeq = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 1;
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** Deep enough to name any frame a sender could mean; still a bounded parse of a bounded text. */
const MAX_REF_DEPTH = 4 * DEFAULT_MAX_JSON_DEPTH;

function readText(input: string, maxBytes: number): unknown {
  try {
    return readWireJson(input, { maxBytes, maxDepth: MAX_REF_DEPTH });
  } catch {
    return undefined;
  }
}

function refuse(message: string, ref?: ErrorRef): ParsedFrame<never> {
  return ref ? { ok: false, error: new InvalidFrame(message), ref } : { ok: false, error: new InvalidFrame(message) };
}

/** Best-effort identity of a refused frame, so a node can drop that exact entry from its queue or fail that call. */
export function refOf(value: unknown): ErrorRef | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.type !== "string" || v.type.length > 32) return undefined;
  const ref: ErrorRef = { type: v.type };
  const text = (x: unknown, max: number) => (typeof x === "string" && x.length > 0 && x.length <= max ? x : undefined);
  const origin = text(v.origin, MAX_ID_LENGTH);
  const requestId = text(v.id, MAX_ID_LENGTH);
  const filterText = text(v.filter, MAX_TOPIC_LENGTH);
  const key = text(v.key, MAX_TOPIC_LENGTH);
  const serviceName = text(v.service, MAX_SERVICE_LENGTH);
  if (origin !== undefined) ref.origin = origin;
  if (typeof v.seq === "number" && Number.isFinite(v.seq)) ref.seq = v.seq;
  if (requestId !== undefined) ref.id = requestId;
  if (filterText !== undefined) ref.filter = filterText;
  if (key !== undefined) ref.key = key;
  if (serviceName !== undefined) ref.service = serviceName;
  return ref;
}

/** Size of `value` as UTF-8 JSON, or null when it is not JSON (undefined, a function, a cycle, a BigInt). */
export function jsonByteLength(value: unknown): number | null {
  const text = jsonText(value);
  return text === null ? null : utf8ByteLength(text);
}

function jsonText(value: unknown): string | null {
  try {
    return JSON.stringify(value) ?? null;
  } catch {
    return null;
  }
}
