/**
 * Draws the PWA icons (public/icons/*.png) from the same shapes as public/favicon.svg: a red
 * circle, a yellow square and a blue stroke on ink, after Kandinsky's compositions. Plain Node,
 * no image libraries: each pixel is supersampled 4×4 against the shapes' exact geometry.
 *
 *   node scripts/make-icons.mjs
 *
 * "maskable" icons are cropped by the platform to a circle or squircle of 80% of the side, so
 * they get a full-bleed background and the shapes shrunk into that safe zone.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const INK = [0x1d, 0x1b, 0x2e];
const RED = [0xe9, 0x4f, 0x37];
const YELLOW = [0xf6, 0xc9, 0x0e];
const BLUE = [0x3f, 0x88, 0xc5];

/** Colour of a point in the favicon's 64×64 coordinate space, or null outside the rounded tile. */
function shade(x, y, { bleed, scale }) {
  // Map into the favicon's space around its centre (shrunk for maskable icons).
  const u = 32 + (x - 32) / scale;
  const v = 32 + (y - 32) / scale;
  const radius = bleed ? 0 : 12;
  const cx = Math.min(Math.max(x, radius), 64 - radius);
  const cy = Math.min(Math.max(y, radius), 64 - radius);
  if (!bleed && (x - cx) ** 2 + (y - cy) ** 2 > radius ** 2) return null;
  // The stroke from (10, 54) to (34, 12), 5 wide, is drawn last (on top), like the SVG.
  const dx = 24;
  const dy = -42;
  const t = Math.max(0, Math.min(1, ((u - 10) * dx + (v - 54) * dy) / (dx * dx + dy * dy)));
  const ex = u - (10 + t * dx);
  const ey = v - (54 + t * dy);
  // The SVG line has butt caps: only the segment's interior counts.
  const along = ((u - 10) * dx + (v - 54) * dy) / (dx * dx + dy * dy);
  if (along >= 0 && along <= 1 && ex * ex + ey * ey <= 2.5 ** 2) return BLUE;
  if (u >= 30 && u <= 52 && v >= 30 && v <= 52) return YELLOW;
  if ((u - 24) ** 2 + (v - 26) ** 2 <= 12 ** 2) return RED;
  return INK;
}

function render(size, options) {
  const data = new Uint8Array(size * size * 4);
  const samples = 4;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (let sy = 0; sy < samples; sy++) {
        for (let sx = 0; sx < samples; sx++) {
          const x = ((px + (sx + 0.5) / samples) / size) * 64;
          const y = ((py + (sy + 0.5) / samples) / size) * 64;
          const colour = shade(x, y, options);
          if (!colour) continue;
          r += colour[0];
          g += colour[1];
          b += colour[2];
          a += 1;
        }
      }
      const i = (py * size + px) * 4;
      // Straight alpha: average colour of the covered samples, coverage as alpha.
      data[i] = a ? Math.round(r / a) : 0;
      data[i + 1] = a ? Math.round(g / a) : 0;
      data[i + 2] = a ? Math.round(b / a) : 0;
      data[i + 3] = Math.round((a / (samples * samples)) * 255);
    }
  }
  return data;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, body) {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(body).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}
function png(size, rgba) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8);
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++)
    Buffer.from(rgba.subarray(y * size * 4, (y + 1) * size * 4)).copy(raw, y * (size * 4 + 1) + 1);
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const out = new URL('../public/icons/', import.meta.url);
mkdirSync(out, { recursive: true });
const icons = [
  ['icon-192.png', 192, { bleed: false, scale: 1 }],
  ['icon-512.png', 512, { bleed: false, scale: 1 }],
  ['apple-touch-icon-180.png', 180, { bleed: true, scale: 0.85 }],
  ['icon-maskable-512.png', 512, { bleed: true, scale: 0.7 }],
];
for (const [name, size, options] of icons) {
  writeFileSync(new URL(name, out), png(size, render(size, options)));
  console.log(`wrote public/icons/${name}`);
}
