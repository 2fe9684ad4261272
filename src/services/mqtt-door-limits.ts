/**
 * What one MQTT connection may cost the node (docs/design.md §Security): the
 * front door is reachable by any local process, and by the LAN with
 * `--mqtt-listen` beyond loopback, before any password is checked.
 *
 * - a packet may claim at most MQTT_MAX_PACKET_BYTES: the claim is checked as
 *   the parser reads the packet's length, before its body is buffered (eight
 *   CONNECTs claiming 256 MB each took the node from 345 to 602 MiB);
 * - connections per source address, and in total, are capped at accept;
 * - a subscriber that does not read is cut off once MQTT_MAX_BUFFERED_BYTES
 *   wait for it, so it cannot stall the broker (and with it every publisher
 *   on the node) until aedes' drain timeout.
 *
 * aedes 1.2 has options for the CONNECT timeout and the drain timeout (used
 * by the front door) but none for a packet size, so the length check wraps the
 * client's mqtt-packet parser, the one place that reads the claim.
 */
import type { Socket } from "node:net";
import type { Client } from "aedes";
import { MAX_DATA_BYTES } from "../hub/frames.ts";
import { MAX_TOPIC_LENGTH } from "../core/topics.ts";

/**
 * The largest packet the door reads: a PUBLISH of the largest payload the Data Hub carries
 * (MAX_DATA_BYTES of text) and its topic, with room to spare. A larger one could never be
 * published anyway. aedes speaks MQTT 3.1.1, which has no way to say this limit: the door closes.
 */
export const MQTT_MAX_PACKET_BYTES = 2 * MAX_DATA_BYTES + MAX_TOPIC_LENGTH;
/** A client must send CONNECT within this long after its TCP connection opened (aedes' connectTimeout). */
export const MQTT_CONNECT_TIMEOUT_MS = 5_000;
/** Connections from one address at once (every local app shares 127.0.0.1), and in total. */
export const MQTT_MAX_CONNECTIONS_PER_SOURCE = 128;
export const MQTT_MAX_CONNECTIONS_TOTAL = 1024;
/** Bytes written to a client and not yet taken by it; past this the client is disconnected. */
export const MQTT_MAX_BUFFERED_BYTES = 1024 * 1024;
/** How long aedes waits for a full socket to drain before it drops the client (a safety net behind MQTT_MAX_BUFFERED_BYTES). */
export const MQTT_DRAIN_TIMEOUT_MS = 2_000;

export type MqttDoorLimits = {
  maxPacketBytes: number;
  connectTimeoutMs: number;
  perSource: number;
  total: number;
  maxBufferedBytes: number;
};

export const DEFAULT_MQTT_DOOR_LIMITS: MqttDoorLimits = {
  maxPacketBytes: MQTT_MAX_PACKET_BYTES,
  connectTimeoutMs: MQTT_CONNECT_TIMEOUT_MS,
  perSource: MQTT_MAX_CONNECTIONS_PER_SOURCE,
  total: MQTT_MAX_CONNECTIONS_TOTAL,
  maxBufferedBytes: MQTT_MAX_BUFFERED_BYTES,
};

/** The parts of mqtt-packet's Parser the length check uses (not in its types). */
type PacketParser = {
  packet: { cmd?: string; length: number };
  _parseLength(): boolean;
  _emitError(error: Error): void;
};

/** Makes `client`'s parser refuse a packet claiming more than `maxBytes` as soon as its length is read; aedes then closes the connection. */
export function limitPacketSize(client: Client, maxBytes: number): void {
  const parser = (client as unknown as { _parser?: PacketParser })._parser;
  if (!parser || typeof parser._parseLength !== "function") throw new Error("aedes' client parser changed: the MQTT packet size limit cannot be applied.");
  const readLength = parser._parseLength.bind(parser);
  parser._parseLength = () => {
    if (!readLength()) return false;
    if (parser.packet.length <= maxBytes) return true;
    parser._emitError(new Error(`An MQTT ${parser.packet.cmd ?? "packet"} of ${parser.packet.length} bytes is more than the ${maxBytes} this door takes; closing.`));
    return false;
  };
}

/** True when `socket` holds more than `maxBytes` the client has not read: it is not keeping up. */
export function fallenBehind(socket: Socket, maxBytes: number): boolean {
  return socket.writableLength > maxBytes;
}
