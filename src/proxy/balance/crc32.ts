/** CRC-32 (ISO-HDLC: the zlib/Ethernet one, reflected polynomial 0xEDB88320), as nginx's ngx_crc32_long. */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Continue a running (not yet finalised) CRC over `data`. Start from 0xFFFFFFFF. */
export function crc32Update(crc: number, data: Uint8Array): number {
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

export function crc32(data: Uint8Array): number {
  return (crc32Update(0xffffffff, data) ^ 0xffffffff) >>> 0;
}
