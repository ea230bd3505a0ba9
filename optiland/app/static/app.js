// optiland app: the page. Every string from the server is put into the document as text (textContent), never as HTML.
import * as maplibregl from './vendor/maplibre-gl.mjs';

const STRINGS = {
  en: {
    instance: 'Instance', tab_scenario: 'Scenario', tab_plan: 'Plan', tab_edit: 'Edit', tab_compare: 'Compare',
    tab_front: 'Trade-offs', tab_jobs: 'Jobs', tab_open: 'Open', village_floors: 'Per-village floors (yuan/person/yr)',
    market: 'Market limits (option.variant = mu, one per line)', show_toml: 'Show scenario file', solve: 'Solve',
    download_toml: 'Download scenario.toml', no_plan: 'No plan yet: set the scenario and solve.',
    village_income: 'Income per person before and after, against the floor', townships: 'Townships',
    export: 'Export plan folder (zip)', edit_help: 'Click a parcel on the map to see its options and why each is allowed or not; choose one to edit the plan. The edited plan is re-checked against every rule.',
    edits: 'Edits', clear_edits: 'Clear edits', reoptimise: 'Re-optimise around my edits', compare: 'Compare',
    points: 'Points', time_limit: 'Time limit per solve (s)', compute_front: 'Compute ES-income front',
    use_point: 'Make this point the working plan', upload_help: 'A parcel layer (GeoPackage, GeoJSON, GeoParquet or a zipped Shapefile) and a villages table (CSV), checked as optiland validate does.',
    parcel_layer: 'Parcel layer', villages_table: 'Villages table', region: 'Region catalog', encoding: 'Shapefile encoding',
    upload: 'Upload and open', colour_by: 'Colour by', view_use: 'current use', view_plan: 'plan',
    view_diff: 'difference A/B', view_red: 'red lines and farmland', view_suit: 'suitability for',
    income_floor: 'Income floor (yuan/person/yr)', transfer_budget: 'Transfer budget (yuan/yr)',
    max_transfer_share: 'Max transfer share', budget: 'Establishment budget (yuan)', diversity_cap: 'Diversity cap',
    forest_cover_min: 'Min forest cover', objective: 'Objective', preset: 'Solver preset',
    solver_time_limit: 'Solver time limit (s)', mip_rel_gap: 'Relative gap', income_min: 'Income at least (yuan/yr)',
    weights: 'Service weights', queued: 'queued', running: 'running', done: 'done', failed: 'failed',
    cancelled: 'cancelled', cancel: 'Cancel', show: 'Show', status: 'status', objective_value: 'objective',
    bound: 'bound', gap: 'gap', binding: 'What limits the plan (binding rows): ', village: 'village',
    floor: 'floor', before: 'before', after: 'after', township: 'township', changed: 'parcels changed',
    legend_use: 'Current use', legend_plan: 'Plan: option and variant', legend_diff: 'Difference', unchanged: 'unchanged',
    changed_to: 'changed (colour: plan B)', red_line: 'ecological red line', farmland: 'basic farmland', other: 'other',
    allowed: 'allowed', not_allowed: 'not allowed', option: 'option', variant: 'variant', why: 'why', choose: 'use',
    rules_ok: 'Every rule holds for the edited plan.', broken: 'Broken rules', checking: 'checking…',
    no_edits: 'no edits', parcels: 'parcels', solves: 'solves', best: 'best plan', uploading: 'uploading…',
    opened: 'opened', problems: 'problems', message: 'message', file: 'file', column: 'column', value: 'value', id: 'id',
    knee: 'knee', ideal: 'ideal', es_index: 'ES index', income: 'income (yuan/yr)', name: 'name', diff: 'B − A',
    report_zh: 'Township reports (中文)', report_en: 'Township reports (English)', zones: 'Ecological-space zones',
    extra_done: 'done: included in the export', catalog_default: 'catalog default', maximise: 'maximise', minimise_cost: 'minimise cost', unset: '',
  },
  zh: {
    instance: '实例', tab_scenario: '情景', tab_plan: '规划', tab_edit: '手工调整', tab_compare: '比较',
    tab_front: '权衡前沿', tab_jobs: '任务', tab_open: '打开数据', village_floors: '各村收入底线（元/人/年）',
    market: '市场上限（方案.品种 = 亩，每行一项）', show_toml: '查看情景文件', solve: '求解',
    download_toml: '下载 scenario.toml', no_plan: '尚无规划：设置情景后求解。',
    village_income: '规划前后人均收入与底线', townships: '乡镇',
    export: '导出规划文件夹（zip）', edit_help: '在地图上点击地块，查看各方案及其允许或禁止的原因；选择一项即修改规划，修改后的规划按全部规则重新核查。',
    edits: '已修改', clear_edits: '清除修改', reoptimise: '保留修改重新优化', compare: '比较',
    points: '点数', time_limit: '每次求解时限（秒）', compute_front: '计算生态-收入前沿',
    use_point: '以此点为当前规划', upload_help: '地块图层（GeoPackage、GeoJSON、GeoParquet 或压缩的 Shapefile）与村表（CSV），按 optiland validate 的规则核查。',
    parcel_layer: '地块图层', villages_table: '村表', region: '区域目录', encoding: 'Shapefile 编码',
    upload: '上传并打开', colour_by: '着色', view_use: '现状用地', view_plan: '规划',
    view_diff: 'A/B 差异', view_red: '生态红线与基本农田', view_suit: '适宜性：',
    income_floor: '收入底线（元/人/年）', transfer_budget: '转移支付预算（元/年）',
    max_transfer_share: '转移收入占比上限', budget: '建设投资预算（元）', diversity_cap: '单一品种占比上限',
    forest_cover_min: '最低森林覆盖率', objective: '目标', preset: '求解器预设',
    solver_time_limit: '求解时限（秒）', mip_rel_gap: '相对间隙', income_min: '总收入不低于（元/年）',
    weights: '生态服务权重', queued: '排队中', running: '运行中', done: '完成', failed: '失败',
    cancelled: '已取消', cancel: '取消', show: '查看', status: '状态', objective_value: '目标值',
    bound: '界', gap: '间隙', binding: '限制规划的约束（紧约束）：', village: '村', floor: '底线',
    before: '规划前', after: '规划后', township: '乡镇', changed: '变化地块',
    legend_use: '现状用地', legend_plan: '规划：方案与品种', legend_diff: '差异', unchanged: '未变',
    changed_to: '已变（颜色：规划 B）', red_line: '生态保护红线', farmland: '永久基本农田', other: '其他',
    allowed: '允许', not_allowed: '不允许', option: '方案', variant: '品种', why: '原因', choose: '采用',
    rules_ok: '修改后的规划满足全部规则。', broken: '违反的规则', checking: '核查中…',
    no_edits: '无修改', parcels: '地块', solves: '次求解', best: '最优可行解', uploading: '上传中…',
    opened: '已打开', problems: '问题', message: '说明', file: '文件', column: '列', value: '值', id: '编号',
    knee: '拐点', ideal: '理想点', es_index: '生态指数', income: '收入（元/年）', name: '名称', diff: 'B − A',
    report_zh: '乡镇规划报告（中文）', report_en: '乡镇规划报告（英文）', zones: '生态空间分区',
    extra_done: '完成：已包含在导出文件中', catalog_default: '目录默认值', maximise: '最大化', minimise_cost: '最小化成本', unset: '',
  },
};
const params = new URLSearchParams(location.search);
let lang = params.get('lang') || localStorage.getItem('optiland-lang') || (navigator.language.startsWith('zh') ? 'zh' : 'en');
const t = (key) => (STRINGS[lang] && STRINGS[lang][key]) ?? STRINGS.en[key] ?? key;

const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? '' : String(c)));
  return node;
}
const svgEl = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};
const fmt = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v)) ? '' :
  (typeof v === 'number' ? v.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }) : String(v));

async function api(path, options = {}) {
  const opts = { credentials: 'same-origin', ...options };
  if (opts.json !== undefined) { opts.body = JSON.stringify(opts.json); opts.headers = { 'Content-Type': 'application/json' }; delete opts.json; }
  const response = await fetch(path, opts);
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const detail = body && (body.error || (typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail)));
    const error = new Error(detail || response.statusText);
    error.status = response.status; error.body = body;
    throw error;
  }
  return body;
}

// ------------------------------------------------------------------ state
const S = {
  key: null, meta: null, parcels: null, map: null, view: 'use', plans: {}, current: null, edits: {}, selected: null,
  compare: null, front: null, frontPoint: null, shown: {}, suit: null, lastRepaintMs: null, polling: new Set(),
};
window.__optiland = S;

function applyStrings() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  $('lang').textContent = lang === 'zh' ? 'English' : '中文';
}

// ------------------------------------------------------------------ map
// tiles are cut into WebGL buffers by web workers: one per core (MapLibre's default is half the cores)
maplibregl.setWorkerCount(Math.max(2, navigator.hardwareConcurrency || 2));
const protocol = new pmtiles.Protocol();
maplibregl.addProtocol('pmtiles', protocol.tile);

function paletteExpr(stateKey, colours, fallback = '#cccccc', property = false) {
  // colour by a feature state (plans, differences, suitability) or by a tile property (current use, red lines)
  const value = property ? ['get', stateKey] : ['feature-state', stateKey];
  const expr = ['match', ['to-number', ['coalesce', value, -1]]];
  colours.forEach((c, i) => { if (c) expr.push(i, c); });
  if (expr.length === 2) expr.push(-99, fallback);
  expr.push(fallback);
  return expr;
}

function setStateArray(stateKey, values) {
  // set feature state `stateKey` for every parcel whose value changed; returns the number set
  const shown = S.shown[stateKey] || (S.shown[stateKey] = new Int32Array(values.length).fill(-2));
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if (shown[i] !== values[i]) {
      S.map.setFeatureState({ source: 'parcels', sourceLayer: 'parcels', id: i }, { [stateKey]: values[i] });
      shown[i] = values[i]; n++;
    }
  }
  return n;
}

function buildMap() {
  const meta = S.meta;
  if (S.map) S.map.remove();
  S.shown = {};
  const map = new maplibregl.Map({
    container: 'map', attributionControl: false, preserveDrawingBuffer: true,
    style: { version: 8, sources: {}, layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#f4f1ea' } }] },
    bounds: meta.tiles.bounds, fitBoundsOptions: { padding: 30 }, minZoom: Math.max(0, meta.tiles.minzoom - 1), maxZoom: 19,
  });
  S.map = map;
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric', maxWidth: 120 }), 'bottom-right');
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.on('rotate', () => { $('north').style.transform = `rotate(${-map.getBearing()}deg)`; });
  map.on('load', () => {
    map.addSource('parcels', { type: 'vector', url: `pmtiles://${location.origin}/api/instances/${S.key}/tiles.pmtiles`, promoteId: 'i' });
    map.addLayer({ id: 'parcels-fill', type: 'fill', source: 'parcels', 'source-layer': 'parcels', paint: { 'fill-color': '#cccccc', 'fill-antialias': false } });  // opaque, no outline pass
    // parcel outlines only where a parcel is several pixels wide: below zoom 13 they would double the work of
    // building the tiles (every parcel a second time, as lines) to draw lines thinner than a pixel
    map.addLayer({ id: 'parcels-line', type: 'line', source: 'parcels', 'source-layer': 'parcels', minzoom: 13, paint: { 'line-color': '#ffffff', 'line-width': ['interpolate', ['linear'], ['zoom'], 13, 0.2, 15, 0.7] } });
    map.addLayer({ id: 'redline', type: 'line', source: 'parcels', 'source-layer': 'parcels', filter: ['in', ['get', 'r'], ['literal', [1, 3]]], paint: { 'line-color': '#d7191c', 'line-width': 1.1 } });
    map.addSource('areas', { type: 'geojson', data: `/api/instances/${S.key}/areas` });
    map.addLayer({ id: 'villages', type: 'line', source: 'areas', filter: ['==', ['get', 'level'], 'village'], paint: { 'line-color': '#444', 'line-width': 1, 'line-dasharray': [3, 2] } });
    map.addLayer({ id: 'townships', type: 'line', source: 'areas', filter: ['==', ['get', 'level'], 'township'], paint: { 'line-color': '#111', 'line-width': 2.4 } });
    // the selected parcel's outline from its own small source (not a line layer over every parcel)
    map.addSource('selected', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({ id: 'selected', type: 'line', source: 'selected', paint: { 'line-color': '#000', 'line-width': 3 } });
    map.on('click', 'parcels-fill', (e) => {
      if (!e.features.length) return;
      map.getSource('selected').setData({ type: 'Feature', properties: {}, geometry: e.features[0].geometry });
      selectParcel(e.features[0].id);
    });
    map.on('mouseenter', 'parcels-fill', () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', 'parcels-fill', () => { map.getCanvas().style.cursor = ''; });
    renderView();
    map.once('idle', () => { document.body.dataset.mapReady = '1'; });
  });
}

function renderView() {
  if (!S.map || !S.map.getLayer('parcels-fill')) return;
  const meta = S.meta;
  let expr; const legend = [];
  let title = '';
  if (S.view === 'use') {
    expr = paletteExpr('u', meta.uses.map((u) => u.colour), '#cccccc', true);
    title = t('legend_use');
    const counts = new Map(); S.parcels.land_use.forEach((c) => counts.set(c, (counts.get(c) || 0) + 1));
    meta.uses.forEach((u, i) => { if (counts.get(i)) legend.push([u.colour, `${u.code} ${lang === 'zh' ? u.name_zh : u.name}`, counts.get(i)]); });
  } else if (S.view === 'plan') {
    expr = paletteExpr('p', meta.kinds.map((k) => k.colour));
    title = t('legend_plan');
    const codes = currentCodes();
    if (codes) {
      const counts = new Map(); codes.forEach((c) => counts.set(c, (counts.get(c) || 0) + 1));
      meta.kinds.forEach((k, i) => { if (counts.get(i)) legend.push([k.colour, kindLabel(k), counts.get(i)]); });
    }
  } else if (S.view === 'diff') {
    expr = ['case', ['==', ['to-number', ['coalesce', ['feature-state', 'd'], 0]], 1], paletteExpr('p', meta.kinds.map((k) => k.colour)), '#e9e6de'];
    title = t('legend_diff');
    legend.push(['#e9e6de', t('unchanged'), S.compare ? S.parcels.parcel_id.length - S.compare.changed : '']);
    legend.push(['#2f6b52', t('changed_to'), S.compare ? S.compare.changed : '']);
  } else if (S.view === 'red') {
    expr = paletteExpr('r', ['#e9e6de', '#e8737a', '#f2d36b', '#c0392b'], '#cccccc', true);
    title = t('view_red');
    legend.push(['#e8737a', t('red_line')], ['#f2d36b', t('farmland')], ['#e9e6de', t('other')]);
  } else if (S.view === 'suit') {
    const colours = ['#4daf4a', '#e41a1c', '#984ea3', '#ff7f00', '#a65628', '#f781bf', '#999999', '#377eb8', '#666666'];
    expr = paletteExpr('s', [colours[0], ...(S.suit ? S.suit.reasons.map((_, i) => colours[1 + (i % (colours.length - 1))]) : [])]);
    title = `${t('view_suit')} ${S.suit ? optionLabel(S.suit.option) : ''}`;
    if (S.suit) {
      const counts = new Map(); S.suit.codes.forEach((c) => counts.set(c, (counts.get(c) || 0) + 1));
      legend.push([colours[0], t('allowed'), counts.get(0) || 0]);
      S.suit.reasons.forEach((r, i) => { if (counts.get(i + 1)) legend.push([colours[1 + (i % (colours.length - 1))], r, counts.get(i + 1)]); });
    }
  }
  S.map.setPaintProperty('parcels-fill', 'fill-color', expr);
  const box = $('legend'); box.replaceChildren(el('h4', {}, title));
  for (const [colour, label, count] of legend) {
    const sw = el('span', { class: 'swatch' }); sw.style.background = colour;
    box.append(el('div', { class: 'legend-row' }, sw, label, count !== undefined && count !== '' ? ` (${fmt(count)})` : ''));
  }
  box.append(el('div', { class: 'legend-row' }, Object.assign(el('span', { class: 'swatch' }), { style: 'border:2px solid #d7191c;background:transparent' }), t('red_line')));
}

const kindLabel = (k) => k.keeps_current_use ? (lang === 'zh' ? k.option_name_zh : k.option_name) :
  (k.option === k.variant ? (lang === 'zh' ? k.option_name_zh : k.option_name) : `${lang === 'zh' ? k.option_name_zh : k.option_name}: ${lang === 'zh' ? k.name_zh : k.name}`);
const optionLabel = (option) => { const k = S.meta.kinds.find((x) => x.option === option); return k ? (lang === 'zh' ? k.option_name_zh : k.option_name) : option; };

function currentCodes() {
  if (S.frontPoint !== null && S.front) return S.front.codes[String(S.frontPoint)];
  if (!S.current || !S.plans[S.current]) return null;
  const codes = S.plans[S.current].codes.slice();
  const index = parcelIndex();
  for (const [pid, k] of Object.entries(S.edits)) codes[index.get(pid)] = k;
  return codes;
}

let _index = null;
function parcelIndex() {
  if (!_index) { _index = new Map(); S.parcels.parcel_id.forEach((pid, i) => _index.set(pid, i)); }
  return _index;
}

function showCodes(codes) {
  // recolour the map with a plan: only parcels whose option changed get a new feature state
  if (!codes || !S.map) return;
  performance.mark('plan-switch-start');
  setStateArray('p', codes);
  if (S.view !== 'plan') { S.view = 'plan'; $('view').value = 'plan'; $('suit-option').hidden = true; }
  renderView();
  S.map.once('idle', () => {
    performance.mark('plan-switch-end');
    const m = performance.measure('plan-switch', 'plan-switch-start', 'plan-switch-end');
    S.lastRepaintMs = m.duration;
    document.body.dataset.planShown = S.current || '';
  });
  S.map.triggerRepaint();
}

// ------------------------------------------------------------------ scenario form
const FIELDS = [
  ['income_floor', 'number'], ['transfer_budget', 'number'], ['max_transfer_share', 'number'], ['budget', 'number'],
  ['diversity_cap', 'number'], ['forest_cover_min', 'number'], ['income_min', 'number'], ['objective', 'select'],
  ['preset', 'select'], ['solver_time_limit', 'number'], ['mip_rel_gap', 'number'],
];
function buildForm() {
  const f = S.meta.form; const box = $('form-fields'); box.replaceChildren();
  for (const [name, type] of FIELDS) {
    let input;
    if (name === 'objective') {
      input = el('select', { id: 'f-objective' }, ...['ecosystem_services', 'income', 'carbon', 'soil', 'water', 'habitat', 'cost'].map((o) => el('option', { value: o }, o === 'cost' ? t('minimise_cost') : `${t('maximise')} ${o}`)));
      input.value = f.objective || 'ecosystem_services';
    } else if (name === 'preset') {
      input = el('select', { id: 'f-preset' }, ...['default', 'fast', 'exact'].map((o) => el('option', { value: o }, o)));
      input.value = f.preset || 'default';
    } else {
      const value = name === 'solver_time_limit' ? f.time_limit : name === 'income_min' ? (f.bounds.income ? f.bounds.income[0] : null) : f[name];
      input = el('input', { id: `f-${name}`, type: 'number', step: 'any', min: '0' });
      if (value !== null && value !== undefined) input.value = value;
      if (name === 'income_floor' && f.catalog_income_floor) input.placeholder = `${t('catalog_default')} ${f.catalog_income_floor}`;
    }
    box.append(el('label', {}, el('span', {}, t(name)), input));
  }
  const weights = el('div', { id: 'f-weights' }, el('span', {}, t('weights')));
  for (const [s, v] of Object.entries(S.meta.services)) {
    const w = el('input', { type: 'number', step: 'any', min: '0', 'data-service': s, style: 'width:60px' });
    if (f.weights && f.weights[s] !== undefined) w.value = f.weights[s];
    weights.append(el('label', { style: 'display:inline-block;margin-right:6px' }, `${lang === 'zh' ? v.label_zh : v.label} `, w));
  }
  box.append(weights);
  const vf = $('village-floors'); vf.replaceChildren();
  S.meta.villages.forEach((v) => {
    const input = el('input', { type: 'number', step: 'any', min: '0', 'data-village': v });
    if (f.village_floors && f.village_floors[v] !== undefined) input.value = f.village_floors[v];
    vf.append(el('label', {}, el('span', {}, v), input));
  });
  $('f-market').value = Object.entries(f.market || {}).map(([k, v]) => `${k} = ${v}`).join('\n');
}

function readForm() {
  const num = (id) => { const v = $(id).value.trim(); return v === '' ? null : Number(v); };
  const form = {
    income_floor: num('f-income_floor'), transfer_budget: num('f-transfer_budget'), max_transfer_share: num('f-max_transfer_share'),
    budget: num('f-budget'), diversity_cap: num('f-diversity_cap'), forest_cover_min: num('f-forest_cover_min'),
    objective: $('f-objective').value, preset: $('f-preset').value, time_limit: num('f-solver_time_limit'), mip_rel_gap: num('f-mip_rel_gap'),
    village_floors: {}, market: {}, weights: {}, bounds: {},
  };
  const incomeMin = num('f-income_min');
  if (incomeMin !== null) form.bounds.income = [incomeMin, null];
  for (const input of document.querySelectorAll('#village-floors input')) if (input.value.trim() !== '') form.village_floors[input.dataset.village] = Number(input.value);
  for (const input of document.querySelectorAll('#f-weights input')) if (input.value.trim() !== '') form.weights[input.dataset.service] = Number(input.value);
  for (const line of $('f-market').value.split('\n')) {
    const [k, v] = line.split('='); if (k && v !== undefined && k.trim()) form.market[k.trim()] = Number(v);
  }
  return form;
}

function showProblems(box, error) {
  box.replaceChildren();
  const problems = (error.body && error.body.problems) || [{ message: error.message }];
  const list = el('ul', { class: 'problems' });
  for (const p of problems) list.append(el('li', {}, [p.file, p.row && `${t('id')} ${p.row}`, p.column && `${t('column')} ${p.column}`, p.value && `${t('value')} ${p.value}`].filter(Boolean).join(', '), p.file || p.row || p.column ? ': ' : '', p.message));
  box.append(list);
}

async function showToml() {
  try {
    const r = await api(`/api/instances/${S.key}/scenario`, { method: 'POST', json: readForm() });
    $('form-problems').replaceChildren();
    $('toml').hidden = false; $('toml').textContent = r.toml;
    const link = $('toml-download'); link.hidden = false;
    link.href = URL.createObjectURL(new Blob([r.toml], { type: 'application/toml' }));
  } catch (e) { showProblems($('form-problems'), e); }
}

async function solve(locks = {}, parent = null) {
  try {
    const r = await api(`/api/instances/${S.key}/solve`, { method: 'POST', json: { form: readForm(), locks, parent } });
    $('form-problems').replaceChildren();
    watchJob(r.job);
    return r.job;
  } catch (e) { showProblems($('form-problems'), e); return null; }
}

// ------------------------------------------------------------------ jobs
function watchJob(id) {
  S.polling.add(id);
  pollJobs();
}
let pollTimer = null;
async function pollJobs() {
  clearTimeout(pollTimer);
  for (const id of [...S.polling]) {
    let job;
    try { job = await api(`/api/jobs/${id}`); } catch { S.polling.delete(id); continue; }
    showJobBar(job);
    if (['done', 'failed', 'cancelled'].includes(job.state)) {
      S.polling.delete(id);
      if (job.state === 'done' && job.kind === 'solve') await loadPlan(id);
      if (job.state === 'done' && job.kind === 'front') await loadFront(id);
      if (job.kind === 'extra') $('extras-status').textContent = `${job.label}: ${job.state === 'done' ? t('extra_done') : `${t(job.state)} ${job.message || ''}`}`;
      if (job.state !== 'done') { $('jobbar').style.display = 'block'; $('jobbar').replaceChildren(`${job.label}: ${t(job.state)} ${job.message || ''}`); setTimeout(() => { if (!S.polling.size) $('jobbar').style.display = 'none'; }, 8000); }
    }
  }
  await refreshJobs();
  if (S.polling.size) pollTimer = setTimeout(pollJobs, 600);
  else if (!['failed', 'cancelled'].includes($('jobbar').dataset.state)) $('jobbar').style.display = 'none';
}

function showJobBar(job) {
  const bar = $('jobbar'); bar.dataset.state = job.state === 'running' || job.state === 'queued' ? 'running' : job.state;
  if (!(job.state === 'running' || job.state === 'queued')) return;
  bar.style.display = 'block';
  const p = job.progress || {};
  const parts = [`${job.label}: ${t(job.state)}`];
  if (p.solves) parts.push(`${p.solves} ${t('solves')}`);
  if (p.bound) parts.push(`${t('bound')} ${p.bound}`);
  if (p.best) parts.push(`${t('best')} ${p.best}`);
  if (p.gap) parts.push(`${t('gap')} ${p.gap}`);
  if (p.line && !p.bound) parts.push(p.line);  // the command's own stage line until HiGHS reports
  const elapsed = job.started ? ` ${Math.round(Date.now() / 1000 - job.started)} s` : '';
  bar.replaceChildren(parts.join(' · ') + elapsed, el('button', { type: 'button', id: 'cancel-running', onclick: () => cancelJob(job.id) }, t('cancel')));
}

async function cancelJob(id) { await api(`/api/jobs/${id}/cancel`, { method: 'POST' }); pollJobs(); }

async function refreshJobs() {
  const { jobs } = await api(`/api/jobs?instance=${S.key}`);
  S.jobs = jobs;
  const list = $('job-list'); list.replaceChildren();
  for (const job of jobs) {
    const item = el('li', { 'data-job': job.id }, el('span', { class: 'state' }, t(job.state)), ' ', job.label, ' ', el('span', { class: 'muted' }, new Date(job.created * 1000).toLocaleTimeString()), ' ', job.message && job.state !== 'done' ? el('span', { class: 'problems' }, job.message) : '');
    if (job.state === 'running' || job.state === 'queued') item.append(' ', el('button', { type: 'button', onclick: () => cancelJob(job.id) }, t('cancel')));
    if (job.state === 'done') item.append(' ', el('button', { type: 'button', onclick: () => (job.kind === 'solve' ? loadPlan(job.id) : loadFront(job.id)) }, t('show')));
    list.append(item);
  }
  const plans = jobs.filter((j) => j.kind === 'solve' && j.state === 'done');
  for (const sel of [$('compare-a'), $('compare-b')]) {
    const keep = sel.value; sel.replaceChildren(...plans.map((j) => el('option', { value: j.id }, `${j.label} ${new Date(j.created * 1000).toLocaleTimeString()}`)));
    if (keep && plans.some((j) => j.id === keep)) sel.value = keep;
  }
  if (plans.length > 1 && !$('compare-b').dataset.touched) { $('compare-a').value = plans[1].id; $('compare-b').value = plans[0].id; }
}

// ------------------------------------------------------------------ plan
async function loadPlan(id) {
  if (!S.plans[id]) S.plans[id] = await api(`/api/plans/${id}`);
  S.current = id; S.frontPoint = null; S.edits = {};
  renderEdits();
  showCodes(S.plans[id].codes);
  renderPlan(S.plans[id]);
  selectTab('plan');
}

function renderPlan(plan) {
  $('plan-empty').hidden = true; $('plan-view').hidden = false;
  const o = plan.run.objective || {};
  $('plan-summary').replaceChildren(el('div', { id: 'plan-status', 'data-status': plan.run.status }, `${t('status')}: ${plan.run.status} · ${t('objective_value')} ${o.name} ${fmt(o.value, 6)} · ${t('bound')} ${fmt(o.bound, 6)} · ${t('gap')} ${o.gap === null || o.gap === undefined ? '–' : (o.gap * 100).toFixed(4) + '%'}`));
  $('plan-binding').textContent = plan.run.binding ? t('binding') + plan.run.binding : '';
  drawVillageChart(plan.villages);
  fillTable($('village-table'), plan.villages, ['village', 'township', 'floor', 'income_per_capita_before', 'income_per_capita_after', 'income_total', 'herd', 'ranger_posts', 'at_or_below_floor'], 'village');
  const tcols = ['township', 'area_mu', 'establishment_cost', 'labour_days', 'herd', 'ranger_posts', 'households_reached', 'villages_at_or_below_floor',
    ...Object.keys(plan.townships[0] || {}).filter((c) => c.startsWith('gain_') || c.startsWith('index_') || (c.startsWith('area_mu__') && !c.includes('.')))];
  fillTable($('township-table'), plan.townships, tcols, 'township');
  $('export').href = `/api/plans/${plan.job}/export.zip`;
  $('export').setAttribute('download', `plan-${plan.job}.zip`);
  $('plan-toml').href = `/api/jobs/${plan.job}/scenario.toml`;
}

function fillTable(table, rows, columns, keyColumn) {
  table.replaceChildren(el('tr', {}, ...columns.map((c) => el('th', {}, c))));
  for (const row of rows) {
    table.append(el('tr', {}, ...columns.map((c) => el('td', { 'data-field': c, 'data-value': row[c] === null || row[c] === undefined ? '' : String(row[c]), [`data-${keyColumn}`]: row[keyColumn], class: typeof row[c] === 'number' ? null : 'text' },
      typeof row[c] === 'number' ? fmt(row[c], Math.abs(row[c]) < 10 ? 3 : 0) : (row[c] === true ? '✓' : row[c] === false ? '' : row[c])))));
  }
}

function drawVillageChart(villages) {
  const w = 380, rowH = 16, pad = 90, h = villages.length * rowH + 24;
  const max = Math.max(...villages.map((v) => Math.max(v.income_per_capita_before, v.income_per_capita_after, v.floor || 0))) * 1.05;
  const x = (v) => pad + (w - pad - 10) * v / max;
  const svg = svgEl('svg', { width: w, height: h, class: 'chart', id: 'village-svg' });
  villages.forEach((v, i) => {
    const y = 4 + i * rowH;
    svg.append(svgEl('text', { x: 2, y: y + 11 }, v.village));
    svg.append(svgEl('rect', { x: pad, y, width: x(v.income_per_capita_before) - pad, height: 6, class: 'bar-before' }));
    svg.append(svgEl('rect', { x: pad, y: y + 6, width: x(v.income_per_capita_after) - pad, height: 7, class: 'bar-after', 'data-village': v.village, 'data-value': v.income_per_capita_after }));
    if (v.floor) svg.append(svgEl('line', { x1: x(v.floor), x2: x(v.floor), y1: y - 1, y2: y + 14, class: 'floor-line' }));
  });
  const ly = villages.length * rowH + 16;
  svg.append(svgEl('rect', { x: pad, y: ly - 8, width: 10, height: 8, class: 'bar-before' }), svgEl('text', { x: pad + 14, y: ly }, t('before')));
  svg.append(svgEl('rect', { x: pad + 70, y: ly - 8, width: 10, height: 8, class: 'bar-after' }), svgEl('text', { x: pad + 84, y: ly }, t('after')));
  svg.append(svgEl('line', { x1: pad + 140, x2: pad + 140, y1: ly - 9, y2: ly + 1, class: 'floor-line' }), svgEl('text', { x: pad + 146, y: ly }, t('floor')));
  $('village-chart').replaceChildren(svg);
}

// ------------------------------------------------------------------ parcels: explain and edit
async function selectParcel(i) {
  S.selected = i;
  const pid = S.parcels.parcel_id[i];
  selectTab('edit');
  const info = await api(`/api/instances/${S.key}/explain/${encodeURIComponent(pid)}`);
  const a = info.attributes;
  $('parcel-info').replaceChildren(el('h3', { id: 'parcel-title', 'data-parcel': pid }, `${pid}`),
    el('div', {}, Object.entries(a).map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v, 2) : v}`).join(' · ')));
  const table = $('explain-table');
  table.replaceChildren(el('tr', {}, el('th', {}, `${t('option')}: ${t('variant')}`), el('th', {}, t('why')), el('th', {}, '')));
  const codes = currentCodes();
  for (const row of info.options) {
    const k = S.meta.kinds.findIndex((x) => x.option === row.option && x.variant === row.variant);
    const kind = S.meta.kinds[k];
    const current = codes && codes[i] === k;
    const button = S.current ? el('button', { type: 'button', 'data-kind': k, disabled: current, onclick: () => editParcel(pid, k) }, t('choose')) : '';
    table.append(el('tr', { class: row.allowed ? 'allowed' : 'forbidden', 'data-option': row.option, 'data-variant': row.variant, 'data-allowed': row.allowed ? '1' : '0' },
      el('td', { class: 'text' }, kind ? kindLabel(kind) : `${row.option}: ${row.variant}`),
      el('td', { class: 'text' }, row.allowed ? t('allowed') : row.why), el('td', {}, current ? '●' : button)));
  }
}

async function editParcel(pid, k) {
  S.edits[pid] = k;
  renderEdits();
  showCodes(currentCodes());
  await checkEdits();
  if (S.selected !== null) selectParcel(S.selected);
}

function renderEdits() {
  const list = $('edit-list'); list.replaceChildren();
  const entries = Object.entries(S.edits);
  if (!entries.length) list.append(el('li', { class: 'muted' }, t('no_edits')));
  for (const [pid, k] of entries) list.append(el('li', { 'data-parcel': pid }, `${pid} → ${kindLabel(S.meta.kinds[k])}`));
  if (!entries.length) $('check-result').replaceChildren();
}

async function checkEdits() {
  $('check-result').replaceChildren(el('span', { class: 'muted' }, t('checking')));
  const r = await api(`/api/plans/${S.current}/check`, { method: 'POST', json: { edits: S.edits } });
  const box = $('check-result');
  if (!r.violations.length) { box.replaceChildren(el('p', { class: 'ok', id: 'rules-ok' }, t('rules_ok'))); return; }
  box.replaceChildren(el('h3', {}, `${t('broken')} (${r.violations.length})`),
    el('ul', { class: 'violations', id: 'violations' }, ...r.violations.map((v) => el('li', { 'data-family': v.family, 'data-key': v.key }, el('strong', {}, v.family), ` [${v.key}] `, v.message))));
}

async function reoptimise() {
  const locks = {};
  for (const [pid, k] of Object.entries(S.edits)) locks[pid] = S.meta.kinds[k].option;
  await solve(locks, S.current);
}

// ------------------------------------------------------------------ compare
async function compare() {
  const a = $('compare-a').value, b = $('compare-b').value;
  if (!a || !b) return;
  const r = await api(`/api/compare?a=${a}&b=${b}`);
  S.compare = r;
  setStateArray('d', r.codes_a.map((x, i) => (x !== r.codes_b[i] ? 1 : 0)));
  S.current = b; S.frontPoint = null; S.edits = {};
  setStateArray('p', r.codes_b);
  S.view = 'diff'; $('view').value = 'diff'; renderView();
  $('compare-summary').replaceChildren(el('p', { id: 'compare-changed', 'data-value': r.changed }, `${t('changed')}: ${fmt(r.changed)} (${fmt(r.changed_area_mu, 1)} mu)`));
  const totals = $('compare-totals');
  totals.replaceChildren(el('tr', {}, el('th', {}, t('name')), el('th', {}, 'A'), el('th', {}, 'B'), el('th', {}, t('diff'))));
  for (const row of r.totals) totals.append(el('tr', {}, el('td', {}, row.name), el('td', {}, fmt(row.a, 4)), el('td', {}, fmt(row.b, 4)), el('td', {}, fmt((row.b ?? 0) - (row.a ?? 0), 4))));
  const vt = $('compare-villages');
  vt.replaceChildren(el('tr', {}, el('th', {}, t('village')), el('th', {}, t('floor')), el('th', {}, t('before')), el('th', {}, `${t('after')} A`), el('th', {}, `${t('after')} B`), el('th', {}, t('diff'))));
  for (const v of r.villages) vt.append(el('tr', { 'data-village': v.village }, el('td', {}, v.village), el('td', {}, fmt(v.floor)), el('td', {}, fmt(v.income_per_capita_before)), el('td', {}, fmt(v.income_per_capita_after_a)), el('td', {}, fmt(v.income_per_capita_after_b)), el('td', {}, fmt(v.income_per_capita_after_b - v.income_per_capita_after_a))));
}

// ------------------------------------------------------------------ front
async function computeFront() {
  try {
    const r = await api(`/api/instances/${S.key}/front`, { method: 'POST', json: { form: readForm(), points: Number($('front-points').value), time_limit: Number($('front-time').value) || null } });
    watchJob(r.job);
  } catch (e) { showProblems($('front-point'), e); }
}

async function loadFront(id) {
  S.front = await api(`/api/fronts/${id}`);
  selectTab('front');
  drawFront();
}

function drawFront() {
  const f = S.front; const pts = f.points;
  const w = 380, h = 260, m = 44;
  const xs = pts.map((p) => p.income), ys = pts.map((p) => p.ecosystem_services);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (v) => m + (w - m - 10) * (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5);
  const sy = (v) => h - m + 10 - (h - m - 10) * (y1 > y0 ? (v - y0) / (y1 - y0) : 0.5);
  const svg = svgEl('svg', { width: w, height: h, class: 'chart', id: 'front-svg' });
  svg.append(svgEl('line', { x1: m, x2: w - 5, y1: h - m + 10, y2: h - m + 10, stroke: '#888' }), svgEl('line', { x1: m, x2: m, y1: 5, y2: h - m + 10, stroke: '#888' }));
  svg.append(svgEl('text', { x: w / 2, y: h - 8, 'text-anchor': 'middle' }, t('income')), svgEl('text', { x: 4, y: 12 }, t('es_index')));
  svg.append(svgEl('text', { x: m, y: h - m + 24 }, fmt(x0)), svgEl('text', { x: w - 10, y: h - m + 24, 'text-anchor': 'end' }, fmt(x1)));
  svg.append(svgEl('text', { x: 2, y: h - m + 10 }, y0.toFixed(3)), svgEl('text', { x: 2, y: 24 }, y1.toFixed(3)));
  const ordered = pts.slice().sort((a, b) => a.income - b.income);
  svg.append(svgEl('polyline', { points: ordered.map((p) => `${sx(p.income)},${sy(p.ecosystem_services)}`).join(' '), fill: 'none', stroke: '#2f6b52' }));
  for (const p of pts) {
    const id = p.point ?? p.plan_id;
    const special = id === f.knee ? '#c0392b' : id === f.ideal ? '#2c6fbb' : '#2f6b52';
    const c = svgEl('circle', { cx: sx(p.income), cy: sy(p.ecosystem_services), r: id === f.knee || id === f.ideal ? 7 : 5, fill: special, 'data-point': id });
    c.addEventListener('click', () => pickFrontPoint(id));
    svg.append(c);
    if (id === f.knee) svg.append(svgEl('text', { x: sx(p.income) + 8, y: sy(p.ecosystem_services) - 6 }, t('knee')));
    if (id === f.ideal && f.ideal !== f.knee) svg.append(svgEl('text', { x: sx(p.income) + 8, y: sy(p.ecosystem_services) + 12 }, t('ideal')));
  }
  // drag along the front: a slider over the points in order of income, switching the map as it moves
  const slider = el('input', { type: 'range', id: 'front-slider', min: 0, max: ordered.length - 1, step: 1, style: 'width:340px' });
  slider.addEventListener('input', () => { const p = ordered[Number(slider.value)]; pickFrontPoint(p.point ?? p.plan_id); });
  $('front-chart').replaceChildren(svg, el('div', {}, slider));
}

function pickFrontPoint(id) {
  S.frontPoint = id;
  const p = S.front.points.find((x) => (x.point ?? x.plan_id) === id);
  delete document.body.dataset.frontShown;
  showCodes(S.front.codes[String(id)]);
  S.map.once('idle', () => { document.body.dataset.frontShown = String(id); });
  $('front-point').replaceChildren(el('p', { id: 'front-chosen', 'data-point': id }, `#${id}: ${t('es_index')} ${fmt(p.ecosystem_services, 4)} · ${t('income')} ${fmt(p.income)}`));
  $('front-pick').hidden = false;
}

async function useFrontPoint() {
  const r = await api(`/api/fronts/${S.front.job}/pick/${S.frontPoint}`, { method: 'POST' });
  watchJob(r.job);
}

// ------------------------------------------------------------------ uploads
async function upload() {
  const status = $('up-status'); const problems = $('up-problems');
  problems.replaceChildren(); status.textContent = t('uploading');
  try {
    const parcels = $('up-parcels').files[0], villages = $('up-villages').files[0];
    const { upload: id } = await api('/api/uploads', { method: 'POST' });
    if (parcels) await api(`/api/uploads/${id}/parcels?filename=${encodeURIComponent(parcels.name)}`, { method: 'PUT', body: parcels });
    if (villages) await api(`/api/uploads/${id}/villages`, { method: 'PUT', body: villages });
    const encoding = $('up-encoding').value.trim() || null;
    const r = await api(`/api/uploads/${id}/open`, { method: 'POST', json: { region: $('up-region').value.trim() || null, encoding, name: parcels ? parcels.name : 'upload' } });
    status.textContent = t('opened');
    await loadInstances(r.instance);
  } catch (e) {
    status.textContent = `${t('problems')}: ${e.message}`;
    const rows = (e.body && e.body.problems) || [];
    problems.replaceChildren(el('tr', {}, ...['file', 'id', 'column', 'value', 'message'].map((c) => el('th', {}, t(c)))));
    for (const p of rows) problems.append(el('tr', {}, el('td', {}, p.file || ''), el('td', {}, p.row || ''), el('td', {}, p.column || ''), el('td', {}, p.value || ''), el('td', { class: 'text' }, p.message)));
  }
}

// ------------------------------------------------------------------ tabs, instances, start
function selectTab(name) {
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== `tab-${name}`;
}

async function openInstance(key) {
  S.key = key; S.plans = {}; S.current = null; S.edits = {}; S.front = null; S.frontPoint = null; S.compare = null; S.suit = null; _index = null;
  delete document.body.dataset.mapReady;
  S.meta = await api(`/api/instances/${key}`);
  S.parcels = await api(`/api/instances/${key}/parcels`);
  $('instance-info').textContent = `${fmt(S.meta.parcels)} ${t('parcels')} · ${S.meta.villages.length} ${t('village')} · ${S.meta.townships.length} ${t('township')} · ${S.meta.catalog.name}`;
  const opts = [...new Set(S.meta.kinds.filter((k) => !k.keeps_current_use).map((k) => k.option))];
  $('suit-option').replaceChildren(...opts.map((o) => el('option', { value: o }, optionLabel(o))));
  buildForm();
  $('up-region').placeholder = t('catalog_default');
  $('plan-empty').hidden = false; $('plan-view').hidden = true;
  renderEdits();
  buildMap();
  await refreshJobs();
  const latest = (S.jobs || []).find((j) => j.kind === 'solve' && j.state === 'done');
  if (latest) S.map.once('load', () => loadPlan(latest.id));
  for (const j of S.jobs || []) if (j.state === 'running' || j.state === 'queued') S.polling.add(j.id);
  if (S.polling.size) pollJobs();
}

async function loadInstances(select) {
  const r = await api('/api/instances');
  $('instance').replaceChildren(...r.instances.map((i) => el('option', { value: i.key }, `${i.name} (${fmt(i.parcels)})`)));
  const wanted = params.get('instance');
  const key = select || (wanted && r.instances.some((i) => i.key === wanted) ? wanted : null) || r.default || (r.instances[0] && r.instances[0].key);
  $('instance').value = key;
  if (key) await openInstance(key);
}

async function setView(view) {
  S.view = view;
  $('suit-option').hidden = view !== 'suit';
  if (view === 'suit') {
    S.suit = await api(`/api/instances/${S.key}/suitability/${encodeURIComponent($('suit-option').value)}`);
    setStateArray('s', S.suit.codes);
  }
  renderView();
}

function start() {
  applyStrings();
  $('lang').addEventListener('click', () => { lang = lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('optiland-lang', lang); applyStrings(); if (S.meta) { buildForm(); renderView(); if (S.current && S.plans[S.current]) renderPlan(S.plans[S.current]); refreshJobs(); } });
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => selectTab(b.dataset.tab));
  $('scenario-form').addEventListener('submit', (e) => { e.preventDefault(); solve(); });
  $('show-toml').addEventListener('click', showToml);
  $('clear-edits').addEventListener('click', () => { S.edits = {}; renderEdits(); showCodes(currentCodes()); });
  $('reoptimise').addEventListener('click', reoptimise);
  $('compare-go').addEventListener('click', compare);
  $('compare-b').addEventListener('change', () => { $('compare-b').dataset.touched = '1'; });
  $('front-go').addEventListener('click', computeFront);
  $('front-pick').addEventListener('click', useFrontPoint);
  $('up-go').addEventListener('click', upload);
  for (const b of document.querySelectorAll('button.extra')) b.addEventListener('click', async () => {
    const r = await api(`/api/plans/${S.current}/extras/${b.dataset.extra}`, { method: 'POST' });
    $('extras-status').textContent = `${b.dataset.extra}: ${t('running')}`;
    watchJob(r.job);
  });
  $('view').addEventListener('change', () => setView($('view').value));
  $('suit-option').addEventListener('change', () => setView('suit'));
  $('instance').addEventListener('change', () => openInstance($('instance').value));
  selectTab('scenario');
  loadInstances().catch((e) => { $('instance-info').textContent = e.message; });
}
start();
