// The scale curve as a standalone SVG: us/port against n, log-log, one line
// per method, with the machine written under it. No dependencies.
const COLORS = ['#888888', '#1f77b4', '#17becf', '#d62728', '#ff7f0e', '#2ca02c', '#9467bd'];
const DASH = { floorHeld: '6 4' };

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function ticks(low, high) {
  const out = [];
  for (let decade = Math.floor(Math.log10(low)); decade <= Math.ceil(Math.log10(high)); decade++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** decade;
      if (v >= low * 0.999 && v <= high * 1.001) out.push({ v, major: m === 1 });
    }
  }
  return out;
}

const label = (v) => (v >= 1000 ? `${v / 1000}k` : String(v));

export function scaleChart(results) {
  const rows = results.scale.filter((r) => r.usPerPort > 0);
  const series = [];
  for (const row of rows) {
    let s = series.find((x) => x.key === row.method);
    if (!s) series.push((s = { key: row.method, name: row.name, points: [] }));
    s.points.push([row.n, row.usPerPort]);
  }
  const ns = rows.map((r) => r.n);
  const us = rows.map((r) => r.usPerPort);
  const xLow = 10 ** Math.floor(Math.log10(Math.min(...ns)));
  const xHigh = Math.max(...ns) * 1.15;
  const yLow = 10 ** Math.floor(Math.log10(Math.min(...us)));
  const yHigh = 10 ** Math.ceil(Math.log10(Math.max(...us)));
  const W = 800, H = 500, left = 70, right = 250, top = 50, bottom = 96;
  const pw = W - left - right, ph = H - top - bottom;
  const x = (n) => left + (pw * (Math.log10(n) - Math.log10(xLow))) / (Math.log10(xHigh) - Math.log10(xLow));
  const y = (v) => top + ph - (ph * (Math.log10(v) - Math.log10(yLow))) / (Math.log10(yHigh) - Math.log10(yLow));
  const m = results.machine;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="24" font-size="15" font-weight="bold">Per-port cost against batch size (held ports), log-log</text>`);
  out.push(`<text x="${left}" y="41" fill="#555">lower is better; each point is the median of its samples</text>`);
  for (const t of ticks(xLow, xHigh)) {
    out.push(`<line x1="${x(t.v).toFixed(1)}" y1="${top}" x2="${x(t.v).toFixed(1)}" y2="${top + ph}" stroke="${t.major ? '#ccc' : '#eee'}"/>`);
    out.push(`<text x="${x(t.v).toFixed(1)}" y="${top + ph + 16}" text-anchor="middle" fill="#333">${label(t.v)}</text>`);
  }
  for (const t of ticks(yLow, yHigh)) {
    out.push(`<line x1="${left}" y1="${y(t.v).toFixed(1)}" x2="${left + pw}" y2="${y(t.v).toFixed(1)}" stroke="${t.major ? '#ccc' : '#eee'}"/>`);
    out.push(`<text x="${left - 6}" y="${(y(t.v) + 4).toFixed(1)}" text-anchor="end" fill="#333">${t.v}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${left + pw / 2}" y="${top + ph + 34}" text-anchor="middle">n, ports in one batch (held together)</text>`);
  out.push(`<text transform="translate(18 ${top + ph / 2}) rotate(-90)" text-anchor="middle">us per port</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const d = s.points.map(([n, v], j) => `${j ? 'L' : 'M'}${x(n).toFixed(1)} ${y(v).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${DASH[s.key] ? ` stroke-dasharray="${DASH[s.key]}"` : ''}/>`);
    for (const [n, v] of s.points) out.push(`<circle cx="${x(n).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${color}"><title>${escape(s.name)}: n = ${n}, ${v} us/port</title></circle>`);
    const ly = top + 10 + i * 20;
    out.push(`<line x1="${left + pw + 14}" y1="${ly}" x2="${left + pw + 40}" y2="${ly}" stroke="${color}" stroke-width="2"${DASH[s.key] ? ` stroke-dasharray="${DASH[s.key]}"` : ''}/>`);
    out.push(`<text x="${left + pw + 46}" y="${ly + 4}">${escape(s.name)}</text>`);
  });
  const footer = [
    `${m.date.slice(0, 16).replace('T', ' ')} UTC · Node ${m.node} · ${m.platform} · ${m.cpu}`,
    `ephemeral range ${m.ephemeralRange} · fd limit ${m.fdLimit} · load average ${m.loadAverageAtStart.join(' ')} at start${results.quick ? ' · quick run' : ''}`,
    results.scaleRange ? `range runs: range [${results.scaleRange.join(', ')}]` : '',
  ].filter(Boolean);
  footer.forEach((line, i) => out.push(`<text x="${left}" y="${H - 36 + i * 14}" fill="#555" font-size="11">${escape(line)}</text>`));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
