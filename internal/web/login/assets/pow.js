// The bot check's proof of work, in a worker so that the page stays responsive: finds the
// number n for which SHA-256(salt + n) is the challenge (ALTCHA's format, served by
// GET /api/v1/protect/challenge) and posts back the payload the server verifies.
self.onmessage = async (ev) => {
  const ch = ev.data;
  const max = ch.maxnumber || ch.maxNumber || 1000000;
  const started = Date.now();
  const enc = new TextEncoder();
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  const batch = 1000;
  for (let from = 0; from <= max; from += batch) {
    const tries = [];
    for (let n = from; n < from + batch && n <= max; n++) {
      tries.push(crypto.subtle.digest("SHA-256", enc.encode(ch.salt + n)).then((d) => (hex(d) === ch.challenge ? n : -1)));
    }
    const found = (await Promise.all(tries)).find((n) => n >= 0);
    if (found !== undefined) {
      self.postMessage({ payload: btoa(JSON.stringify({ algorithm: ch.algorithm, challenge: ch.challenge, number: found,
        salt: ch.salt, signature: ch.signature, took: Date.now() - started })) });
      return;
    }
  }
  self.postMessage({ error: "unsolvable" });
};
