/**
 * How MQTT payloads and Data Hub data map onto each other, the same way the
 * `understudy pub` command reads its argument: a payload that is JSON becomes
 * that JSON value, any other UTF-8 text becomes a string; back out, a string
 * goes as its text and anything else as JSON. So `{"zoom":2}` from a Python
 * script and from `understudy pub` are the same message, and text stays text.
 */
import { AppError } from "../core/errors.ts";
import { nestingExceeds } from "../core/wire-json.ts";
import { MAX_DATA_DEPTH, SMALL_TEXT_BYTES } from "../hub/frames.ts";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Topics under this prefix belong to the front door (gap notices); MQTT clients may not publish there. */
export const FRONT_DOOR_TOPIC_PREFIX = "$understudy/";
/** Where a node's MQTT clients hear that messages were missed (a JSON `{ missed, message }`). */
export const GAP_TOPIC = `${FRONT_DOOR_TOPIC_PREFIX}gap`;

export class MqttPayloadNotText extends AppError {
  constructor(topic: string) {
    super("MQTT_PAYLOAD_NOT_TEXT", `The MQTT message on "${topic}" is not UTF-8 text; the Data Hub carries JSON or text only (send binary data base64-encoded).`, {
      status: 400,
    });
    this.name = "MqttPayloadNotText";
  }
}

export class MqttPayloadTooDeep extends AppError {
  constructor(topic: string) {
    super("MQTT_PAYLOAD_TOO_DEEP", `The MQTT message on "${topic}" nests deeper than the ${MAX_DATA_DEPTH} levels the Data Hub carries; flatten it.`, { status: 400 });
    this.name = "MqttPayloadTooDeep";
  }
}

/** The hub data for an MQTT payload; throws MqttPayloadNotText for bytes that are not UTF-8, MqttPayloadTooDeep for JSON nested too deep. */
export function dataFromPayload(topic: string, payload: Uint8Array): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(payload);
  } catch {
    throw new MqttPayloadNotText(topic);
  }
  if (text.length === 0) return "";
  // Checked before JSON.parse, which would otherwise build (and the node measure) a value nested thousands deep.
  if (nestingExceeds(text, MAX_DATA_DEPTH)) throw new MqttPayloadTooDeep(topic);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Whether what dataFromPayload made of `payload` is within the hub's data limits by construction (parseToHubFrame's
 * `dataMeasured`), so the node need not encode it again to measure it: JSON parsed from at most SMALL_TEXT_BYTES
 * (frames.ts says why its JSON fits) nested at most MAX_DATA_DEPTH (checked before parsing), or that text as a
 * string, whose JSON is at most 6 bytes a byte ("\u0001") and two quotes: 6 × 10,922 + 2 ≤ 64 KiB.
 */
export function dataMeasured(payload: Uint8Array): boolean {
  return payload.length <= SMALL_TEXT_BYTES;
}

/** The MQTT payload for hub data. */
export function payloadFromData(data: unknown): Buffer {
  return Buffer.from(encoder.encode(typeof data === "string" ? data : JSON.stringify(data)));
}
