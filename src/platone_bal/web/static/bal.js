// Charts for the dashboard, drawn with Plotly from the JSON API (bearer token of the
// signed-in user, in the page's <meta name="bal-api-token">).
"use strict";

const token = document.querySelector('meta[name="bal-api-token"]')?.content;

async function api(path) {
  const answer = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!answer.ok) {
    const problem = await answer.json().catch(() => ({}));
    throw new Error(problem.detail || `${answer.status} ${answer.statusText}`);
  }
  return answer.json();
}

async function pages(path, most) {
  // Follow next_cursor until `most` items (the API pages at 1,000).
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < most);
  return items;
}

function options(select, values) {
  select.replaceChildren(...values.map((v) => new Option(v, v)));
}

function plain(text) {
  // Plotly renders a subset of HTML in titles and names (<a href>, <b>, <br>): text from
  // a payload (a device id, a unit) must show as the characters it is, never as markup.
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function draw(chart, x, y, name, unit, xTitle = "measurement time (UTC)") {
  Plotly.react(chart, [{ x, y, name: plain(name), mode: "lines+markers", type: "scatter" }], {
    margin: { t: 30, r: 20, b: 50, l: 60 },
    title: { text: plain(name) },
    xaxis: { title: { text: plain(xTitle) } },
    yaxis: { title: { text: plain(unit || "value") } },
  }, { responsive: true, displaylogo: false });
}

function seriesOf(reading) {
  // One line per measurand and per attribute set (e.g. a PMU's bus and phase).
  const attrs = Object.values(reading.attrs || {}).join(", ");
  return attrs ? `${reading.measurand} (${attrs})` : reading.measurand;
}

function setupReadings(section) {
  const status = section.querySelector("[data-status]");
  const chart = section.querySelector("[data-chart]");
  const series = section.querySelector("[data-series]");
  const table = section.querySelector("[data-table]");
  const device = series.querySelector('[name="device"]');
  const measurand = series.querySelector('[name="measurand"]');
  let readings = [];

  function show() {
    const chosen = readings.filter((r) => r.device === device.value && seriesOf(r) === measurand.value);
    chosen.sort((a, b) => a.time.localeCompare(b.time));
    draw(chart, chosen.map((r) => r.time), chosen.map((r) => Number(r.value)),
         `${device.value} · ${measurand.value}`, chosen[0]?.unit);
    const count = chosen.length === 1 ? "1 reading" : `${chosen.length} readings`;
    section.querySelector("[data-caption]").textContent =
      `${count} of ${device.value}, ${measurand.value}; the latest are in the table below.`;
    const rows = chosen.slice(-20).reverse().map((r) => {
      const tr = document.createElement("tr");
      const cells = [String(r.id), r.time, `${r.value} ${r.unit || ""}`];
      for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
      const links = document.createElement("td");
      links.innerHTML = `<a href="/proofs/${r.id}.json" download>proof</a> · <a href="/verify?reading=${r.id}">verify</a> · <a href="/explorer?reading=${r.id}">path</a>`;
      tr.append(links);
      return tr;
    });
    table.querySelector("tbody").replaceChildren(...rows);
    table.hidden = false;
    drawHistory(chosen[chosen.length - 1]);
  }

  const historyForm = section.querySelector("[data-history]");
  const historyFigure = section.querySelector("[data-history-figure]");
  const historyCaption = section.querySelector("[data-history-caption]");
  let historyOf = null;

  async function drawHistory(reading) {
    // The store summarises every reading of the period into at most 300 buckets, so a
    // year of a 10-second meter costs the browser 300 points, not 3 million.
    if (!reading) return;
    historyOf = reading;
    const to = new Date();
    const from = new Date(to.getTime() - Number(historyForm.period.value) * 86400e3);
    const query = new URLSearchParams({
      producer: reading.producer, device: reading.device, measurand: reading.measurand,
      from: from.toISOString(), to: to.toISOString(), points: "300",
    });
    let series;
    try {
      series = await api(`/v1/series?${query}`);
    } catch (error) {
      historyCaption.textContent = `Could not load the history: ${error.message}`;
      return;
    }
    if (historyOf !== reading) return;  // another series was chosen meanwhile
    const x = series.buckets.map((b) => b.start);
    Plotly.react(section.querySelector("[data-history-chart]"), [
      { x, y: series.buckets.map((b) => b.max), mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" },
      { x, y: series.buckets.map((b) => b.min), name: "min – max", mode: "lines", fill: "tonexty", line: { width: 0 } },
      { x, y: series.buckets.map((b) => b.avg), name: "average", mode: "lines" },
    ], {
      margin: { t: 30, r: 20, b: 50, l: 60 },
      title: { text: plain(`${reading.device} · ${reading.measurand}`) },
      xaxis: { title: { text: "measurement time (UTC)" } },
      yaxis: { title: { text: plain(reading.unit || "value") } },
    }, { responsive: true, displaylogo: false });
    const count = series.buckets.reduce((sum, b) => sum + b.count, 0);
    historyCaption.textContent = `${count} readings of ${reading.device}, ${reading.measurand} ` +
      `(every component and phase) in ${series.buckets.length} buckets of ` +
      `${Math.round(series.bucket_seconds)} s, summarised by the store.`;
    historyForm.hidden = false;
    historyFigure.hidden = false;
  }

  historyForm.period.onchange = () => drawHistory(historyOf);

  async function load(producer) {
    status.textContent = `Loading ${producer}'s readings…`;
    try {
      // the latest 5,000 (newest first from the API), however long the node has run
      readings = await pages(`/v1/readings?producer=${encodeURIComponent(producer)}&order=newest&limit=1000`, 5000);
    } catch (error) {
      status.textContent = `Could not load the readings: ${error.message}`;
      return;
    }
    if (!readings.length) { status.textContent = `No readings of ${producer} yet.`; return; }
    const devices = [...new Set(readings.map((r) => r.device))].sort();
    options(device, devices);
    const pickMeasurands = () => {
      options(measurand, [...new Set(readings.filter((r) => r.device === device.value).map(seriesOf))].sort());
    };
    pickMeasurands();
    series.hidden = false;
    device.onchange = () => { pickMeasurands(); show(); };
    measurand.onchange = show;
    status.textContent = `The latest ${readings.length} readings of ${producer} loaded.`;
    show();
  }

  const form = section.querySelector("[data-load]");
  form.addEventListener("submit", (event) => { event.preventDefault(); load(form.producer.value); });
  load(form.producer.value);
}

async function setupGrowth(section) {
  const status = section.querySelector("[data-status]");
  try {
    // the latest 1,000 checkpoints, oldest of them first on the chart
    const page = await api(`/v1/logs/${encodeURIComponent(section.dataset.log)}/checkpoints?order=newest&limit=1000`);
    const checkpoints = page.items.reverse();
    draw(section.querySelector("[data-chart]"), checkpoints.map((c) => c.time),
         checkpoints.map((c) => c.size), "readings in the log", "readings", "checkpoint time (UTC)");
    status.textContent = `The latest ${checkpoints.length} signed checkpoints.`;
  } catch (error) {
    status.textContent = `Could not load the checkpoints: ${error.message}`;
  }
}

document.querySelectorAll("[data-readings]").forEach((section) => {
  if (section.querySelector("[data-load]")) setupReadings(section);
});
document.querySelectorAll("[data-growth]").forEach(setupGrowth);
