import { describe, expect, test } from "bun:test";
import { MAX_TOPIC_LENGTH, filterProblem, isValidFilter, isValidTopic, topicMatches, topicProblem } from "../../../src/core/topics.ts";

describe("topicMatches", () => {
  // [filter, topic, matches]
  const table: [string, string, boolean][] = [
    ["studio/cam1/tally", "studio/cam1/tally", true],
    ["studio/cam1/tally", "studio/cam2/tally", false],
    ["studio/cam1", "studio/cam1/tally", false],
    ["studio/cam1/tally", "studio/cam1", false],
    // + is exactly one level
    ["studio/+/tally", "studio/cam1/tally", true],
    ["studio/+/tally", "studio/cam1/extra/tally", false],
    ["studio/+/tally", "studio/tally", false],
    ["studio/+", "studio/cam1", true],
    ["studio/+", "studio/cam1/tally", false],
    ["+", "studio", true],
    ["+", "studio/cam1", false],
    ["+/+", "studio/cam1", true],
    ["+/cam1/+", "studio/cam1/tally", true],
    ["+/tally", "/tally", true], // an empty level is a level
    // # is the rest, including nothing
    ["studio/#", "studio/cam1/tally", true],
    ["studio/#", "studio/cam1", true],
    ["studio/#", "studio", true],
    ["studio/#", "studios/cam1", false],
    ["studio/cam1/#", "studio/cam2/tally", false],
    ["#", "studio/cam1/tally", true],
    ["#", "studio", true],
    ["studio/+/#", "studio/cam1", true],
    ["studio/+/#", "studio/cam1/tally/red", true],
    ["studio/+/#", "studio", false],
    // $-topics: not matched by a wildcard in the first level, matched when named
    ["#", "$hub/presence", false],
    ["+/presence", "$hub/presence", false],
    ["+", "$hub", false],
    ["$hub/#", "$hub/presence", true],
    ["$hub/+", "$hub/presence", true],
    ["studio/+", "studio/$x", true], // only the first level is special
    // empty levels
    ["a//b", "a//b", true],
    ["a/+/b", "a//b", true],
    ["a/b/", "a/b", false],
    ["a/b/+", "a/b/", true],
    ["/#", "/x", true],
  ];
  test.each(table)("%p on %p -> %p", (filter, topic, expected) => {
    expect(isValidFilter(filter)).toBe(true);
    expect(isValidTopic(topic)).toBe(true);
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe("filters", () => {
  const valid = ["a", "a/b", "+", "#", "a/+", "a/#", "+/+/#", "a//b", "/", "$hub/#", "a/+/b/#"];
  test.each(valid)("%p is a valid filter", (filter) => {
    expect(filterProblem(filter)).toBeNull();
  });

  // [filter, part of the reason]
  const invalid: [string, string][] = [
    ["", "cannot be empty"],
    ["a/#/b", '"#" may only be the last level'],
    ["#/a", '"#" may only be the last level'],
    ["a#", '"#" must be a whole level'],
    ["a/b#", '"#" must be a whole level'],
    ["a/#b", '"#" must be a whole level'],
    ["a+", '"+" must be a whole level'],
    ["a/+b/c", '"+" must be a whole level'],
    ["++", '"+" must be a whole level'],
    ["a/\u0000", "NUL"],
  ];
  test.each(invalid)("%p is refused: %s", (filter, reason) => {
    expect(filterProblem(filter)).toContain(reason);
    expect(isValidFilter(filter)).toBe(false);
  });
});

describe("topics", () => {
  test.each(["a", "a/b", "a//b", "/", "$hub/presence", "studio/cam 1/tally"])("%p is a valid topic", (topic) => {
    expect(topicProblem(topic)).toBeNull();
  });

  const invalid: [string, string][] = [
    ["", "cannot be empty"],
    ["a/+", 'cannot contain "+" or "#"'],
    ["a/#", 'cannot contain "+" or "#"'],
    ["a+b", 'cannot contain "+" or "#"'],
    ["a\u0000b", "NUL"],
  ];
  test.each(invalid)("%p is refused: %s", (topic, reason) => {
    expect(topicProblem(topic)).toContain(reason);
  });
});

test(`topics and filters may have up to ${MAX_TOPIC_LENGTH} characters`, () => {
  const longest = "x".repeat(MAX_TOPIC_LENGTH);
  expect(topicProblem(longest)).toBeNull();
  expect(filterProblem(longest)).toBeNull();
  expect(topicProblem(`${longest}x`)).toBe(`a topic may be at most ${MAX_TOPIC_LENGTH} characters (got ${MAX_TOPIC_LENGTH + 1})`);
  expect(filterProblem(`${longest}x`)).toBe(`a filter may be at most ${MAX_TOPIC_LENGTH} characters (got ${MAX_TOPIC_LENGTH + 1})`);
});
