// The UI in a real browser: sign up, start a run whose strategy phase needs
// a review, watch the phases, approve the review, download the package.
//   node tests/walkthrough.mjs http://127.0.0.1:8787 [chromium path]
// Prints a JSON summary; exits non-zero on any failure.
import { chromium } from "playwright-core";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.argv[2];
const executablePath = process.argv[3] ?? "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const summary = { seen: [] };
try {
  const page = await browser.newPage({ acceptDownloads: true });
  page.setDefaultTimeout(60000);
  await page.goto(base + "/");
  await page.getByLabel("Create an account").check();
  await page.getByLabel("E-mail").fill("walk@example.com");
  await page.getByLabel("Password").fill("a long enough password");
  await page.getByLabel("Organisation").fill("Walkthrough Ltd");
  await page.getByRole("button", { name: "Create account" }).click();

  await page.getByLabel("Idea").fill("Meal planning for climbing gyms");
  await page.getByLabel("Review the strategy phase").check();
  await page.getByRole("button", { name: "Start planning run" }).click();

  // Phases complete live, then the strategy phase waits for the review.
  await page.locator('tr[data-phase="opportunity"][data-status="completed"]').waitFor();
  summary.seen.push("opportunity completed");
  await page.locator('tr[data-phase="strategy"][data-status="awaiting_review"]').waitFor();
  summary.seen.push("strategy awaiting review");
  summary.pendingWhileReview = await page.locator('tr[data-phase="business-model"]').getAttribute("data-status");
  await page.getByRole("button", { name: "Approve" }).click();

  await page.locator('[data-testid="run-status"]', { hasText: "completed" }).waitFor();
  summary.seen.push("run completed");
  summary.completedPhases = await page.locator('tr[data-status="completed"]').count();
  summary.liveEvents = Number(await page.getByTestId("live-events").textContent());

  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download package" }).click()]);
  const file = join(tmpdir(), "foundation-package-" + process.pid + ".json");
  await download.saveAs(file);
  const pkg = JSON.parse(await readFile(file, "utf8"));
  summary.filename = download.suggestedFilename();
  summary.packagePhases = pkg.artifacts.map((a) => a.phase);
  summary.runId = pkg.run_id;
  console.log(JSON.stringify(summary));
} catch (e) {
  console.error("walkthrough failed:", e?.stack ?? e, JSON.stringify(summary));
  process.exitCode = 1;
} finally {
  await browser.close();
}
