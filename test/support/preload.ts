/** Loaded before every test file (bunfig.toml): temp folders go once all tests ran. */
import { afterAll } from "bun:test";
import { removeTempDirs } from "./temp-dirs.ts";

afterAll(removeTempDirs);
