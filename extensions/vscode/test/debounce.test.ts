/** Unit tests for the restart debounce (src/debounce.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { debounce } from "../src/debounce";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("debounce", () => {
  it("runs once after a burst settles", async () => {
    let runs = 0;
    const restart = debounce(() => runs++, 30);
    restart();
    await sleep(10);
    restart();
    restart();
    assert.equal(restart.pending, true);
    await sleep(60);
    assert.equal(runs, 1);
    assert.equal(restart.pending, false);
  });

  it("drops a pending run when disposed", async () => {
    let runs = 0;
    const restart = debounce(() => runs++, 20);
    restart();
    restart.dispose();
    await sleep(40);
    assert.equal(runs, 0);
  });
});
