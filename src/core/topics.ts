/**
 * Data Hub topics and topic filters, MQTT-style (docs/design.md §Data Hub).
 *
 * A topic is a `/`-separated path ("studio/cam1/tally"); empty levels are
 * allowed, as in MQTT. A filter may use two wildcards, each a whole level:
 * `+` matches exactly one level, `#` (last level only) matches the rest,
 * including nothing ("studio/#" matches "studio"). Topics whose first level
 * starts with `$` are reserved for the system: a filter that starts with a
 * wildcard does not match them, so `#` never drowns a client in hub chatter.
 *
 * Retained keys (`set`/`get`) use the same syntax as topics, so one
 * subscription can follow both messages and retained values.
 *
 * Pure functions; no I/O.
 */

/** Longest topic, key or filter, in characters. */
export const MAX_TOPIC_LENGTH = 256;

const SEPARATOR = "/";
const SINGLE_LEVEL = "+";
const MULTI_LEVEL = "#";

/** Levels of a topic or filter: "a//b" -> ["a", "", "b"]. */
export function splitLevels(topicOrFilter: string): string[] {
  return topicOrFilter.split(SEPARATOR);
}

/** Why `topic` cannot be published to (or used as a retained key), or null when it can. */
export function topicProblem(topic: string): string | null {
  const common = commonProblem(topic, "topic");
  if (common) return common;
  if (topic.includes(SINGLE_LEVEL) || topic.includes(MULTI_LEVEL)) {
    return `a topic cannot contain "+" or "#" (those are wildcards for subscriptions): "${shorten(topic)}"`;
  }
  return null;
}

/** Why `filter` cannot be subscribed to, or null when it can. */
export function filterProblem(filter: string): string | null {
  const common = commonProblem(filter, "filter");
  if (common) return common;
  const levels = splitLevels(filter);
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level === MULTI_LEVEL) {
      if (i !== levels.length - 1) return `"#" may only be the last level of a filter: "${shorten(filter)}"`;
    } else if (level.includes(MULTI_LEVEL)) {
      return `"#" must be a whole level, as in "studio/#": "${shorten(filter)}"`;
    } else if (level !== SINGLE_LEVEL && level.includes(SINGLE_LEVEL)) {
      return `"+" must be a whole level, as in "studio/+/tally": "${shorten(filter)}"`;
    }
  }
  return null;
}

export function isValidTopic(topic: string): boolean {
  return topicProblem(topic) === null;
}

export function isValidFilter(filter: string): boolean {
  return filterProblem(filter) === null;
}

/**
 * Whether a valid filter matches a valid topic. Callers that match one filter
 * against many topics should split once and use `levelsMatch`.
 */
export function topicMatches(filter: string, topic: string): boolean {
  return levelsMatch(splitLevels(filter), splitLevels(topic));
}

/** `topicMatches` on pre-split levels (the hub keeps filters split). */
export function levelsMatch(filterLevels: readonly string[], topicLevels: readonly string[]): boolean {
  const first = filterLevels[0];
  if ((first === SINGLE_LEVEL || first === MULTI_LEVEL) && topicLevels[0]?.startsWith("$")) return false;
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i]!;
    // Checked before the length test: "a/#" also matches "a" itself.
    if (level === MULTI_LEVEL) return true;
    if (i >= topicLevels.length) return false;
    if (level !== SINGLE_LEVEL && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

function commonProblem(text: string, what: "topic" | "filter"): string | null {
  if (text.length === 0) return `a ${what} cannot be empty`;
  if (text.length > MAX_TOPIC_LENGTH) return `a ${what} may be at most ${MAX_TOPIC_LENGTH} characters (got ${text.length})`;
  if (text.includes("\u0000")) return `a ${what} cannot contain the NUL character`;
  return null;
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
