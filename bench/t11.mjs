import getPortTheirs from 'get-port';
import getPortOurs, { allocate, clearLockedPorts } from '../dist/index.mjs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { internalBinding } = require('../dist/allocate.js');
const { plan } = require('../dist/options.js');
const req = plan(1, undefined, internalBinding, false).request;
const time = async (fn, iters) => { const t=process.hrtime.bigint(); for (let i=0;i<iters;i++) await fn(); return Number(process.hrtime.bigint()-t)/iters/1000; };
const med=(x)=>x.sort((a,b)=>a-b)[x.length>>1];
const res = { raw: [], allocate1: [], allocateNoCoord: [], getPort: [], theirs: [] , ratio: []};
for (let r=0;r<15;r++){
  res.raw.push(await time(() => internalBinding.allocate(req), 200));
  res.allocate1.push(await time(() => allocate(1), 200));
  res.allocateNoCoord.push(await time(() => allocate(1, {coordinate:false}), 200));
  const a = await time(getPortOurs, 200); clearLockedPorts();
  const b = await time(getPortTheirs, 200);
  res.getPort.push(a); res.theirs.push(b); res.ratio.push(b/a);
}
for (const [k,v] of Object.entries(res)) console.log(k.padEnd(20), med(v).toFixed(2));
