// The verifier page's checks, run in this browser so that a reader need not trust the
// node that served the proof (ARCHITECTURE §6): (a) the leaf is re-encoded as RFC 8785
// canonical JSON and hashed with SHA3-256 under the RFC 9162 leaf prefix, (b) the
// inclusion path is followed to the checkpoint's root, (c) the checkpoint's EIP-191
// signature is recovered and compared with the stated signer, (d) the registry contract
// is asked, with eth_call at a JSON-RPC URL the reader chooses, whether it holds that
// root. The same checks, names and verdicts as `domain/proof.py`'s `verify_bundle`.
//
// The cryptography is not ours: pinned npm packages copied unchanged under vendor/
// (vendor/manifest.json lists them with their SHA-256). Everything is imported when
// the page loads, so once it has loaded nothing is asked of the node's server.

import { keccak_256, sha3_256 } from "./vendor/noble-hashes/sha3.js";
import { bytesToHex, hexToBytes } from "./vendor/noble-hashes/utils.js";
import { recoverPublicKey } from "./vendor/noble-secp256k1/index.js";
import canonicalize from "./vendor/canonicalize/canonicalize.js";

// What the node's own definitions say a bundle holds (the page renders them from
// domain/proof.py and domain/setpoints.py, so both verifiers refuse the same bundles).
const CONTRACT = JSON.parse(document.getElementById("verifier-contract").textContent);
// domain/checkpoint.py's SignedCheckpoint.from_json and the bundle's `anchor` member.
const CHECKPOINT_KEYS = ["log", "root", "signature", "signer", "size", "time", "v"];
const CHECKPOINT_VERSION = 1;
const ANCHOR_KEYS = ["block", "chain_id", "contract", "tx"];
const MAX_PROOF_BYTES = 1 << 20; // what the server reads of an upload, too
const RPC_TIMEOUT_MS = 10_000; // as `bal verify --rpc`

const encoder = new TextEncoder();
const utf8 = (text) => encoder.encode(text);
const hex0x = (bytes) => "0x" + bytesToHex(bytes);

// The registry's ABI as far as the anchor check needs it (contracts/CertificationRegistry.sol)
const ROOT_AT = keccak_256(utf8("rootAt(bytes32,uint64)")).subarray(0, 4);
const ANCHORED = hex0x(keccak_256(utf8("Anchored(bytes32,uint64,bytes32,uint64)")));

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// ---- (format) the bundle's shape, refused as verify_bundle's _parse refuses it ----

class FormatError extends Error {}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function hasExactly(object, keys) {
  const own = Object.keys(object).sort();
  const wanted = [...keys].sort();
  return own.length === wanted.length && own.every((key, i) => key === wanted[i]);
}

function parseHash(text) {
  if (typeof text !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(text)) {
    throw new FormatError(`${JSON.stringify(text)} is not a 0x-prefixed 32-byte hex hash`);
  }
  return hexToBytes(text.slice(2));
}

function isCount(value) {
  return Number.isSafeInteger(value) && value >= 0;
}

function parseCheckpoint(doc) {
  if (!isObject(doc)) throw new FormatError("checkpoint is not an object");
  if (!hasExactly(doc, CHECKPOINT_KEYS)) {
    throw new FormatError(`checkpoint keys must be exactly ${CHECKPOINT_KEYS.join(", ")}`);
  }
  if (doc.v !== CHECKPOINT_VERSION) {
    throw new FormatError(`checkpoint version ${JSON.stringify(doc.v)} is not supported`);
  }
  if (!isCount(doc.size)) {
    throw new FormatError("checkpoint size must be a non-negative integer");
  }
  for (const key of ["log", "time", "signature", "signer", "root"]) {
    if (typeof doc[key] !== "string") {
      throw new FormatError(`checkpoint ${key} must be a string`);
    }
  }
  const { log, size, time, signature, signer } = doc;
  return { log, size, time, signature, signer, root: parseHash(doc.root) };
}

function expectedLeafKeys(leaf) {
  // A set point or its answer (log bal-setpoints) has keys of its own kind.
  const kinds = CONTRACT.setpoint_leaf_keys;
  return leaf.log === CONTRACT.setpoint_log ? kinds[String(leaf.kind)] : CONTRACT.leaf_keys;
}

function parseBundle(bundle) {
  if (!isObject(bundle)) throw new FormatError("proof is not a JSON object");
  if (bundle.format !== CONTRACT.format || bundle.hash !== CONTRACT.hash) {
    throw new FormatError(`not a ${CONTRACT.format} bundle with hash ${CONTRACT.hash}`);
  }
  const leaf = bundle.leaf;
  if (!isObject(leaf)) throw new FormatError("leaf must be a JSON object");
  const keys = expectedLeafKeys(leaf);
  if (!keys || !hasExactly(leaf, keys)) {
    const wanted = (keys || CONTRACT.leaf_keys).join(", ");
    throw new FormatError(`leaf must have exactly the keys ${wanted}`);
  }
  if (!isCount(bundle.index)) throw new FormatError("index must be a non-negative integer");
  const checkpoint = parseCheckpoint(bundle.checkpoint);
  if (leaf.log !== checkpoint.log) {
    throw new FormatError("leaf and checkpoint name different logs");
  }
  if (!Array.isArray(bundle.inclusion)) {
    throw new FormatError("inclusion must be a list of hashes");
  }
  const anchor = bundle.anchor ?? null;
  if (anchor !== null && (!isObject(anchor) || !hasExactly(anchor, ANCHOR_KEYS))) {
    throw new FormatError("anchor must be null or {chain_id, contract, tx, block}");
  }
  let leafBytes;
  try {
    leafBytes = utf8(canonicalize(leaf)); // RFC 8785: what the node hashed (rfc8785.dumps)
  } catch (error) {
    throw new FormatError(`leaf has no RFC 8785 form: ${error.message}`);
  }
  const path = bundle.inclusion.map(parseHash);
  return { leaf, leafBytes, index: bundle.index, checkpoint, path, anchor };
}

// ---- (leaf, inclusion) RFC 9162 §2.1 with SHA3-256 ----

const hashLeaf = (bytes) => sha3_256(concat(Uint8Array.of(0x00), bytes));
const hashChildren = (left, right) => sha3_256(concat(Uint8Array.of(0x01), left, right));
const half = (n) => Math.floor(n / 2); // not n >> 1: sizes may pass 2**31

// RFC 9162 §2.1.3.2, step by step from the leaf to the root the path leads to (drawn
// below); null when the path cannot be one for (index, size). As merkle.inclusion_steps.
function inclusionSteps(index, size, leafHash, path) {
  if (!(index < size)) return null;
  let fn = index;
  let sn = size - 1;
  let current = leafHash;
  const steps = [];
  for (const sibling of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      current = hashChildren(sibling, current);
      steps.push({ sibling, side: "left", result: current });
      while (fn % 2 === 0 && fn !== 0) { fn = half(fn); sn = half(sn); }
    } else {
      current = hashChildren(current, sibling);
      steps.push({ sibling, side: "right", result: current });
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? steps : null;
}

function leafAndInclusion({ leafBytes, index, checkpoint, path }) {
  const leafHash = hashLeaf(leafBytes);
  const steps = inclusionSteps(index, checkpoint.size, leafHash, path);
  const reached = steps === null ? null : (steps.at(-1)?.result ?? leafHash);
  const drawn = { leafHash, steps: steps ?? [] };
  const size = checkpoint.size;
  if (reached !== null && sameBytes(reached, checkpoint.root)) {
    return [drawn, [
      check("leaf", true,
        `leaf hash ${hex0x(leafHash)} (SHA3-256 of its ${leafBytes.length} RFC 8785 bytes)`),
      check("inclusion", true, `leaf ${index} is in the tree of size ${size}`),
    ]];
  }
  // A changed leaf and a changed path look the same from here; the leaf is the data
  // people care about, so the verdict names it first (as verify_bundle does).
  return [drawn, [
    check("leaf", false, `leaf hash ${hex0x(leafHash)} is not the leaf certified at index `
      + `${index} (or the path was changed)`),
    check("inclusion", false,
      `path does not lead to root ${hex0x(checkpoint.root)} (size ${size})`),
  ]];
}

// ---- (signature) EIP-191 personal_sign over the checkpoint's RFC 8785 bytes ----

function checkpointBytes(checkpoint) {
  // The body checkpoint.py signs: the root re-written in lower case, as Python does.
  const { log, size, time } = checkpoint;
  const body = { v: CHECKPOINT_VERSION, log, size, root: hex0x(checkpoint.root), time };
  return utf8(canonicalize(body));
}

function personalMessageHash(message) {
  // EIP-191 version 0x45: keccak256("\x19Ethereum Signed Message:\n" + length + message).
  return keccak_256(concat(utf8(`\x19Ethereum Signed Message:\n${message.length}`), message));
}

function checksumAddress(lowerHex) {
  // EIP-55: a letter is upper case where the keccak256 of the lower-case address has a
  // nibble of 8 or more.
  const hash = bytesToHex(keccak_256(utf8(lowerHex)));
  const letters = [...lowerHex].map((c, i) => (parseInt(hash[i], 16) >= 8 ? c.toUpperCase() : c));
  return "0x" + letters.join("");
}

function recoverAddress(messageHash, signature) {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) {
    throw new Error("it is not 0x and 65 bytes of hex (r, s, v)");
  }
  const bytes = hexToBytes(signature.slice(2));
  const v = bytes[64];
  const recovery = v >= 27 ? v - 27 : v; // Ethereum writes v as 27/28
  if (recovery !== 0 && recovery !== 1) throw new Error(`v = ${v} is not 27 or 28`);
  // noble's "recovered" form is recovery || r || s; the message is already hashed.
  const signed = concat(Uint8Array.of(recovery), bytes.subarray(0, 64));
  const key = recoverPublicKey(signed, messageHash, { prehash: false, isCompressed: false });
  // An address is the last 20 bytes of keccak256 of the key without its 0x04 prefix.
  return checksumAddress(bytesToHex(keccak_256(key.subarray(1)).subarray(12)));
}

function signatureCheck(checkpoint) {
  const message = checkpointBytes(checkpoint);
  let recovered;
  try {
    recovered = recoverAddress(personalMessageHash(message), checkpoint.signature);
  } catch (error) {
    return check("signature", false, `signature cannot be recovered: ${error.message}`);
  }
  if (recovered.toLowerCase() !== checkpoint.signer.toLowerCase()) {
    return check("signature", false, `signature is by ${recovered}, not by the stated signer`);
  }
  return check("signature", true, `checkpoint signed by ${checkpoint.signer} (recovered from `
    + `the EIP-191 signature over its ${message.length} RFC 8785 bytes)`);
}

// ---- (anchor) the registry's root for (logId, size), read at the reader's endpoint ----

let rpcId = 0;

async function rpc(endpoint, method, params) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), RPC_TIMEOUT_MS);
  endpoint.calls.push(method);
  try {
    const answer = await fetch(endpoint.url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
      credentials: "omit", // the endpoint is someone else's: no cookies, no referrer
      referrerPolicy: "no-referrer",
      cache: "no-store",
      signal: controller.signal,
    });
    if (!answer.ok) throw new Error(`${method} answered HTTP ${answer.status}`);
    const reply = await answer.json();
    if (reply.error) throw new Error(`${method}: ${reply.error.message}`);
    return reply.result;
  } catch (error) {
    if (error.name === "AbortError") {
      throw new Error(`${method}: no answer within ${RPC_TIMEOUT_MS / 1000} s`);
    }
    if (error instanceof TypeError) {
      // fetch says no more than this, whether the host is down or refuses this origin.
      throw new Error(`${method} got no answer this page may read (is the endpoint up, and `
        + "does it allow this page's origin by CORS?)");
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

const word = (value) => BigInt(value).toString(16).padStart(64, "0"); // one ABI slot
const isHex = (text, bytes) => new RegExp(`^0x[0-9a-fA-F]{${2 * bytes}}$`).test(String(text));

function logKey(log) {
  // The log's on-chain id: keccak256 of its UTF-8 name (ARCHITECTURE §5).
  return bytesToHex(keccak_256(utf8(log)));
}

async function readRoot(endpoint, anchor, checkpoint) {
  // rootAt(bytes32 logId, uint64 size) returns (bytes32 root, uint64 timestamp).
  const data = hex0x(ROOT_AT) + logKey(checkpoint.log) + word(checkpoint.size);
  const result = await rpc(endpoint, "eth_call", [{ to: anchor.contract, data }, "latest"]);
  if (typeof result !== "string" || !/^0x[0-9a-fA-F]{128}/.test(result)) {
    throw new Error(`eth_call returned ${JSON.stringify(result)}, not (root, timestamp)`);
  }
  const seconds = Number(BigInt("0x" + result.slice(66, 130)));
  return { root: "0x" + result.slice(2, 66).toLowerCase(), time: new Date(seconds * 1000) };
}

function anchoredHere(receipt, anchor, checkpoint) {
  // The transaction must carry the registry's Anchored(logId, size, root, timestamp)
  // event for this checkpoint, from the registry's own address.
  const key = "0x" + logKey(checkpoint.log);
  return (receipt.logs || []).some((entry) => {
    const data = String(entry.data || "").slice(2);
    return String(entry.address).toLowerCase() === anchor.contract.toLowerCase()
      && entry.topics?.[0] === ANCHORED && entry.topics?.[1] === key
      && BigInt("0x" + (data.slice(0, 64) || "0")) === BigInt(checkpoint.size)
      && "0x" + data.slice(64, 128).toLowerCase() === hex0x(checkpoint.root);
  });
}

async function anchorProblem(endpoint, anchor, checkpoint) {
  // As web3_chain.web3_anchor_lookup: null when the chain holds the root, else why not.
  const chainId = Number(BigInt(await rpc(endpoint, "eth_chainId", [])));
  if (chainId !== anchor.chain_id) {
    return `${endpoint.url} is chain ${chainId}; the anchor is on chain ${anchor.chain_id}`;
  }
  if (!isHex(anchor.contract, 20)) return `${JSON.stringify(anchor.contract)} is not an address`;
  if (!isHex(anchor.tx, 32)) return `${JSON.stringify(anchor.tx)} is not a transaction hash`;
  const held = await readRoot(endpoint, anchor, checkpoint);
  const { log, size } = checkpoint;
  const root = hex0x(checkpoint.root);
  if (/^0x0{64}$/.test(held.root)) return `the contract holds no root for size ${size} of ${log}`;
  if (held.root !== root) {
    return `the contract holds ${held.root} for size ${size}, the checkpoint says ${root}`;
  }
  endpoint.anchoredAt = held.time;
  const receipt = await rpc(endpoint, "eth_getTransactionReceipt", [anchor.tx]);
  if (!receipt) return `transaction ${anchor.tx} is not on the chain at ${endpoint.url}`;
  if (!anchoredHere(receipt, anchor, checkpoint)) {
    return `transaction ${anchor.tx} did not anchor this checkpoint`;
  }
  const block = Number(BigInt(receipt.blockNumber));
  if (block !== anchor.block) return `transaction is in block ${block}, not ${anchor.block}`;
  return null;
}

async function anchorCheck(endpoint, anchor, checkpoint) {
  if (anchor === null) {
    return check("anchor", null, "not anchored yet; ask again after the interval");
  }
  if (endpoint === null) return check("anchor", null, "no JSON-RPC URL given; anchor not checked");
  let problem;
  try {
    problem = await anchorProblem(endpoint, anchor, checkpoint);
  } catch (error) {
    problem = `cannot check the anchor at ${endpoint.url}: ${error.message}`;
  }
  if (problem !== null) return check("anchor", false, problem, endpoint.url);
  const when = endpoint.anchoredAt.toISOString().replace(".000Z", "Z");
  return check("anchor", true, `contract ${anchor.contract} holds the root for `
    + `${checkpoint.size} (anchored ${when}, transaction ${anchor.tx} in block ${anchor.block})`,
  endpoint.url);
}

// ---- (signer) a Light Node's key: DeviceRegistry is not read here ----

function signerCheck(leaf) {
  const signer = isObject(leaf.attrs) ? leaf.attrs.signer : undefined;
  if (signer === undefined || signer === null) return null;
  // The registry's address is not in the bundle: `bal verify --device-registry` checks it.
  return check("signer", null, `signed by ${signer} at device ${leaf.producer}/${leaf.device}; `
    + "registry not checked (bal verify --device-registry does)");
}

// ---- the whole verification ----

function check(name, ok, detail, via = null) {
  return { name, ok, detail, where: via ? `this browser, reading ${via}` : "this browser" };
}

function endpointOf(url) {
  const text = url.trim();
  if (!text) return null;
  let parsed;
  try {
    parsed = new URL(text);
  } catch {
    throw new Error(`${text} is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`${text} is not an http(s) URL`);
  }
  return { url: text, calls: [], anchoredAt: null };
}

async function verify(text, rpcUrl) {
  let parsed;
  try {
    parsed = parseBundle(JSON.parse(text));
  } catch (error) {
    const why = error instanceof FormatError ? error.message : `not JSON: ${error.message}`;
    return { checks: [check("format", false, why)], drawn: null, endpoint: null };
  }
  const checks = [check("format", true, CONTRACT.format)];
  const [drawn, merkle] = leafAndInclusion(parsed);
  checks.push(...merkle, signatureCheck(parsed.checkpoint));
  let endpoint = null;
  if (checks.every((c) => c.ok)) {
    try {
      endpoint = endpointOf(rpcUrl);
      checks.push(await anchorCheck(endpoint, parsed.anchor, parsed.checkpoint));
    } catch (error) {
      checks.push(check("anchor", false, error.message));
    }
  } else {
    // As verify_bundle: the chain is only asked about a proof that is sound so far.
    checks.push(check("anchor", null, "not checked: an earlier check failed"));
  }
  const signer = signerCheck(parsed.leaf);
  if (signer) checks.push(signer);
  return { checks, drawn, endpoint };
}

// ---- drawing the result (DOM nodes and text only: nothing from the proof is markup) ----

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const VERDICT = {
  true: ["valid", "VALID"],
  false: ["invalid", "INVALID"],
  null: ["skipped", "NOT CHECKED"],
};

function checksTable(checks) {
  const titles = ["Check", "Result", "Ran on", "Detail"];
  const head = element("tr", {}, ...titles.map((t) => element("th", { scope: "col" }, t)));
  const rows = checks.map(({ name, ok, detail, where }) => {
    const [css, word] = VERDICT[String(ok)];
    return element("tr", { "data-check": name },
      element("th", { scope: "row" }, name), element("td", { class: css }, word),
      element("td", {}, where), element("td", {}, detail));
  });
  return element("table", {}, element("caption", {}, "Checks"),
    element("thead", {}, head), element("tbody", {}, ...rows));
}

function svg(tag, attributes, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const short = (hash) => `${hash.slice(0, 10)}…${hash.slice(-6)}`;

function merklePicture(steps) {
  // The server page's drawing: the leaf at the bottom, each sibling beside the hash it
  // joins, the root on top.
  const width = 720, row = 56, n = steps.length;
  const picture = svg("svg", { class: "merkle", viewBox: `0 0 ${width} ${n * row + 10}`,
    role: "img", "aria-labelledby": "local-merkle-title" });
  picture.append(svg("title", { id: "local-merkle-title" },
    `Inclusion path of ${n - 1} steps; the top box is the root it leads to`));
  steps.forEach((step, i) => {
    const y = (n - i - 1) * row + 5;
    const label = (i === n - 1 ? "root " : step.side === "leaf" ? "leaf " : "") + short(step.hash);
    const kind = step.side === "leaf" ? "leaf" : "node";
    picture.append(svg("rect", { x: 240, y, width: 240, height: 34, rx: 4, class: kind }),
      svg("text", { x: 360, y: y + 22, "text-anchor": "middle" }, label));
    if (step.sibling) {
      const sx = step.side === "left" ? 10 : 490;
      picture.append(
        svg("rect", { x: sx, y: y + row, width: 220, height: 34, rx: 4, class: "sibling" }),
        svg("text", { x: sx + 110, y: y + row + 22, "text-anchor": "middle" }, short(step.sibling)),
        svg("line", { x1: sx + 110, y1: y + row, x2: 360, y2: y + 34 }),
        svg("line", { x1: 360, y1: y + row, x2: 360, y2: y + 34 }));
    }
  });
  return picture;
}

function merkleSteps(drawn) {
  const steps = [{ hash: hex0x(drawn.leafHash), sibling: "", side: "leaf" }, ...drawn.steps.map(
    (s) => ({ hash: hex0x(s.result), sibling: hex0x(s.sibling), side: s.side }))];
  const code = (hash) => element("code", { class: "hash" }, hash);
  const items = steps.map((s) => element("li", {}, ...(s.side === "leaf"
    ? ["leaf hash"]
    : ["with sibling ", code(s.sibling), ` on the ${s.side}`]), ": ", code(s.hash)));
  return [element("h3", {}, "Merkle path, from the leaf up to the root"), merklePicture(steps),
    element("ol", { class: "steps" }, ...items)];
}

function whereItRan(endpoint) {
  // Says what ran where, and which requests left the browser, so nobody has to guess.
  const libraries = CONTRACT.packages.map((p) => `${p.name} ${p.version}`).join(", ");
  let network = "No request left this browser.";
  const calls = endpoint?.calls ?? [];
  if (calls.length) {
    network = `The only ${calls.length === 1 ? "request" : `${calls.length} requests`} that `
      + `left this browser went to ${endpoint.url}: JSON-RPC ${calls.join(", ")}.`;
  }
  return element("p", { "data-where": "" }, "Every check ran in this browser, with the page's "
    + `scripts (${libraries}); nothing was asked of the node's server. ${network}`);
}

function showResult(container, { checks, drawn, endpoint }) {
  const valid = checks.every((c) => c.ok !== false);
  const [css, word] = VERDICT[String(valid)];
  const title = element("h2",
    { id: "local-verdict-title", class: css, "data-verdict": "", tabindex: "-1" }, word);
  const section = element("section", { class: "card", "aria-labelledby": "local-verdict-title" },
    title, whereItRan(endpoint), checksTable(checks), ...(drawn ? merkleSteps(drawn) : []));
  document.querySelector("[data-server-result]")?.remove(); // one verdict on the page: this one
  container.replaceChildren(section);
  title.focus();
  return valid;
}

// ---- the form ----

async function readUpload(upload, proof) {
  // A chosen file goes into the text box (and out of the form), so what is checked is
  // what the reader sees, and a later edit is not overridden by the file.
  const file = upload.files[0];
  if (!file) return false;
  if (file.size > MAX_PROOF_BYTES) throw new Error(`${file.name} is larger than 1 MiB`);
  proof.value = await file.text();
  upload.value = "";
  return true;
}

function setup(form) {
  const proof = form.querySelector("#proof");
  const upload = form.querySelector("#upload");
  const rpcUrl = form.querySelector("#rpc");
  const button = form.querySelector("button[data-local]");
  const progress = document.querySelector("[data-progress]");
  const result = document.querySelector("[data-local-result]");

  upload.addEventListener("change", () => {
    readUpload(upload, proof)
      .then((read) => { if (read) progress.textContent = "The file's proof is in the text box."; })
      .catch((error) => { progress.textContent = error.message; });
  });
  form.addEventListener("submit", async (event) => {
    if (event.submitter !== button) return; // "Check on the node's server" posts the form
    event.preventDefault();
    button.disabled = true;
    try {
      await readUpload(upload, proof);
      progress.textContent = "Checking in this browser…";
      const valid = showResult(result, await verify(proof.value, rpcUrl.value));
      progress.textContent = `Checked in this browser: ${valid ? "VALID" : "INVALID"}.`;
    } catch (error) {
      progress.textContent = `The browser could not check: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  button.hidden = false; // only now: without these scripts the server's check is the way
  form.dataset.ready = "";
}

setup(document.querySelector("form[data-verifier]"));
