/**
 * What mqtt-packet gets for `require("debug")` in the executable (build.ts swaps it in for that
 * package only). Its parser and writer call a namespace's debug a dozen times or more per packet;
 * switched off, each call still built an argument array and read the `enabled` getter: ≈ 5 % of a
 * publishing node's CPU on the node MQTT path (bench hub). Unless DEBUG is set, a namespace gets
 * a function that does nothing; with DEBUG set, the real module's, so DEBUG=mqtt-packet:* prints
 * as it always did.
 */
type Debugger = ((...args: unknown[]) => void) & { enabled: boolean; namespace: string; extend: (suffix: string) => Debugger };

function quiet(namespace: string): Debugger {
  const off = (() => {}) as unknown as Debugger;
  off.enabled = false;
  off.namespace = namespace;
  off.extend = (suffix) => quiet(`${namespace}:${suffix}`);
  return off;
}

function createDebug(namespace: string): Debugger {
  if (!process.env.DEBUG) return quiet(namespace);
  const real = require("debug") as (namespace: string) => Debugger;
  return real(namespace);
}

// A CommonJS module, as the one it stands in for: mqtt-packet calls `require("debug")(namespace)`.
module.exports = createDebug;
