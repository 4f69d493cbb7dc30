// Browser test of event streams and CORS (tests/tests/browser.rs runs it): headless Chromium
// (Debian's, driven by playwright-core) loads a page from one origin and opens an EventSource
// on hubgate at another. Through a TCP proxy that first forwards to hubgate A and then, after
// dropping every connection, to hubgate B, it checks that the browser's own reconnect resumes
// the stream with nothing lost and nothing repeated; that a page from a disallowed origin is
// refused by the browser's CORS check; and that a preflighted fetch POST with Authorization and
// BrokerProperties sends an event.
//
// Input: the environment (HUBGATE_BROWSER_CONFIG, JSON): pagePort, proxyPort, a, b (hubgate base
// URLs), hub, listen and send (SAS tokens), chromium (path). Output: one JSON line per step;
// exit code 0 when every check passed.

import http from 'node:http';
import net from 'node:net';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.env.HUBGATE_BROWSER_CONFIG);
const log = (step, detail = {}) => console.log(JSON.stringify({ step, ...detail }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// The page's server: an empty page on both origins (localhost and 127.0.0.1 are two origins).
const pages = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>hubgate stream</title><ul id="events"></ul>');
});
await new Promise((r) => pages.listen(cfg.pagePort, '127.0.0.1', r));

// The proxy: one backend at a time; switching drops every open connection.
let backend = new URL(cfg.a);
const sockets = new Set();
const served = { a: 0, b: 0 };
const proxy = net.createServer((client) => {
  served[backend.href === new URL(cfg.a).href ? 'a' : 'b'] += 1;
  const upstream = net.connect(Number(backend.port), backend.hostname);
  sockets.add(client);
  sockets.add(upstream);
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
await new Promise((r) => proxy.listen(cfg.proxyPort, '127.0.0.1', r));
const gateway = `http://127.0.0.1:${cfg.proxyPort}`;

async function send(body) {
  const r = await fetch(`${cfg.a}/${cfg.hub}/partitions/0/messages`, {
    method: 'POST',
    headers: { authorization: cfg.send },
    body,
  });
  assert.equal(r.status, 201, `send ${body}: ${await r.text()}`);
}

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
let failed = false;
try {
  const stream = `${gateway}/${cfg.hub}/consumergroups/$Default/partitions/0/stream?access_token=${encodeURIComponent(cfg.listen)}`;
  const open = (page) =>
    page.evaluate((url) => {
      // (runs in the page)
      window.got = [];
      window.errors = 0;
      window.opened = 0;
      const es = new EventSource(url);
      window.es = es;
      es.onopen = () => {
        window.opened += 1;
      };
      es.onerror = () => {
        window.errors += 1;
      };
      es.onmessage = (e) => {
        const data = JSON.parse(e.data);
        window.got.push({ id: e.lastEventId, body: data.body, offset: data.offset });
        const li = document.createElement('li');
        li.textContent = data.body;
        document.getElementById('events').append(li);
      };
    }, stream);

  // 1. An allowed origin: events sent meanwhile arrive in order.
  const page = await browser.newPage();
  await page.goto(`http://localhost:${cfg.pagePort}/`);
  await open(page);
  for (const b of ['e0', 'e1', 'e2']) await send(b);
  const got = () => page.evaluate(() => window.got);
  await until('three events', async () => (await got()).length >= 3);
  assert.deepEqual((await got()).map((e) => e.body), ['e0', 'e1', 'e2']);
  log('events in order', { events: await got() });

  // 2. The server side drops the connection; the browser reconnects by itself, with
  //    Last-Event-ID, to the other instance; nothing lost, nothing repeated.
  backend = new URL(cfg.b);
  for (const s of sockets) s.destroy();
  await send('e3');
  await send('e4');
  await until('five events', async () => (await got()).length >= 5);
  await sleep(1500); // a duplicate would come now
  const all = await got();
  assert.deepEqual(all.map((e) => e.body), ['e0', 'e1', 'e2', 'e3', 'e4']);
  assert.deepEqual(all.map((e) => e.id), ['0', '1', '2', '3', '4']);
  assert.ok(served.b >= 1, 'the second instance served the resumed stream');
  const opened = await page.evaluate(() => window.opened);
  assert.ok(opened >= 2, `the browser reconnected (${opened} opens)`);
  log('resumed on the second instance', { events: all, served, opened });

  // 3. A preflighted fetch POST with Authorization and BrokerProperties, from the allowed
  //    origin: sent, and on the stream.
  const posted = await page.evaluate(
    async ({ url, token }) => {
      const r = await fetch(url, {
        method: 'POST',
        headers: {
          Authorization: token,
          BrokerProperties: JSON.stringify({ Label: 'from-the-browser' }),
          'Content-Type': 'application/json',
        },
        body: '"from-browser"',
      });
      return { status: r.status, requestId: r.headers.get('x-request-id') };
    },
    { url: `${gateway}/${cfg.hub}/partitions/0/messages`, token: cfg.send },
  );
  assert.equal(posted.status, 201, JSON.stringify(posted));
  assert.ok(posted.requestId, 'x-request-id is exposed to the script');
  await until('the posted event', async () => (await got()).some((e) => e.body === '"from-browser"'));
  log('preflighted POST sent an event', posted);
  await page.evaluate(() => window.es.close());

  // 4. A disallowed origin (127.0.0.1 is not localhost): the browser refuses the stream and
  //    the fetch.
  const other = await browser.newPage();
  await other.goto(`http://127.0.0.1:${cfg.pagePort}/`);
  await open(other);
  await until('the refusal', () => other.evaluate(() => window.es.readyState === 2), 15000);
  const blocked = await other.evaluate(async (url) => {
    try {
      await fetch(url);
      return 'answered';
    } catch (e) {
      return e.name;
    }
  }, `${gateway}/openapi.json`);
  const refused = await other.evaluate(() => ({ got: window.got.length, opened: window.opened }));
  assert.deepEqual(refused, { got: 0, opened: 0 });
  assert.equal(blocked, 'TypeError');
  log('disallowed origin refused', { ...refused, fetch: blocked });
} catch (e) {
  failed = true;
  log('failed', { error: String(e && e.stack ? e.stack : e) });
} finally {
  await browser.close();
  proxy.close();
  pages.close();
  for (const s of sockets) s.destroy();
}
process.exit(failed ? 1 : 0);
