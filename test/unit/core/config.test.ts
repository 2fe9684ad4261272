import { describe, expect, test } from "bun:test";
import {
  configFromEnv,
  configFromFileText,
  configFromFlags,
  defaultConfig,
  envName,
  flagName,
  parseHostPort,
  resolveConfig,
} from "../../../src/core/config.ts";

const defaults = defaultConfig("studio-pc");

describe("config precedence: flags > env > config.json > defaults", () => {
  const file = configFromFileText(JSON.stringify({ heartbeatMs: 300, failback: "manual", name: "from-file", role: "server" }), "config.json");
  const env = configFromEnv({ UNDERSTUDY_HEARTBEAT_MS: "200", UNDERSTUDY_NAME: "from-env", PATH: "/bin" });
  const flags = configFromFlags({ heartbeatMs: "100" });

  test("each layer overrides the ones below it, setting by setting", () => {
    const config = resolveConfig(defaults, flags, env, file);
    expect(config.heartbeatMs).toBe(100);
    expect(config.name).toBe("from-env");
    expect(config.failback).toBe("manual");
    expect(config.role).toBe("server");
    expect(config.failoverTimeoutMs).toBe(1000);
  });

  test("defaults alone give a stand-alone machine on loopback", () => {
    const config = resolveConfig(defaults);
    expect(config.role).toBe("standalone");
    expect(config.uiListen).toBe("127.0.0.1:7400");
    expect(config.name).toBe("studio-pc");
  });

  test("names of flags and environment variables", () => {
    expect(flagName("failoverTimeoutMs")).toBe("failover-timeout-ms");
    expect(envName("failoverTimeoutMs")).toBe("UNDERSTUDY_FAILOVER_TIMEOUT_MS");
  });

  test('"none" clears a nullable setting from a lower layer', () => {
    const fromFile = configFromFileText(JSON.stringify({ backup: "10.0.0.2:7401" }), "config.json");
    expect(resolveConfig(defaults, configFromFlags({ backup: "none" }), fromFile).backup).toBeNull();
  });
});

describe("every bad input names its source", () => {
  const cases: [string, () => unknown, string][] = [
    ["flag not a number", () => configFromFlags({ heartbeatMs: "fast" }), "--heartbeat-ms: expected a whole number"],
    ["flag below minimum", () => configFromFlags({ heartbeatMs: "1" }), "--heartbeat-ms: at least 10 ms"],
    ["flag bad role", () => configFromFlags({ role: "primary" }), "--role"],
    ["flag bad address", () => configFromFlags({ main: "10.0.0.1" }), "--main: expected HOST:PORT"],
    ["flag port too big", () => configFromFlags({ main: "10.0.0.1:70000" }), "--main"],
    ["env bad failback", () => configFromEnv({ UNDERSTUDY_FAILBACK: "sometimes" }), "UNDERSTUDY_FAILBACK"],
    ["file not JSON", () => configFromFileText("{role:", "/d/config.json"), "/d/config.json is not valid JSON"],
    ["file not an object", () => configFromFileText("[1]", "/d/config.json"), "must hold a JSON object"],
    ["file bad field", () => configFromFileText('{"heartbeatMs":"x"}', "/d/config.json"), '/d/config.json, field "heartbeatMs"'],
    ["file unknown field", () => configFromFileText('{"colour":"red"}', "/d/config.json"), '/d/config.json, field "colour" is not a setting'],
    ["timeout below three heartbeats", () => resolveConfig(defaults, configFromFlags({ heartbeatMs: "500", failoverTimeoutMs: "1200" })), "at least 3 times --heartbeat-ms"],
    ["client without main", () => resolveConfig(defaults, configFromFlags({ role: "client" })), "A client needs the main server's address"],
    ["UI on the network without password", () => resolveConfig(defaults, configFromFlags({ uiListen: "0.0.0.0:7400" })), "a password is required"],
  ];
  for (const [name, run, message] of cases) test(name, () => expect(run).toThrow(message));

  test("a UI on the network with a password is fine", () => {
    const config = resolveConfig(defaults, configFromFlags({ uiListen: "0.0.0.0:7400" }), configFromEnv({ UNDERSTUDY_UI_PASSWORD: "long enough" }));
    expect(config.uiPassword).toBe("long enough");
  });
});

describe("HOST:PORT", () => {
  test.each([
    ["10.0.0.2:7401", { host: "10.0.0.2", port: 7401 }],
    ["render-1.local:0", { host: "render-1.local", port: 0 }],
    ["[::1]:7401", { host: "::1", port: 7401 }],
    ["10.0.0.2", null],
    ["10.0.0.2:", null],
    ["10.0.0.2:99999", null],
    ["a b:1", null],
  ])("%p", (text, expected) => expect(parseHostPort(text)).toEqual(expected));
});
