// A local HTTP server (127.0.0.1, random port) for the download tests: serves one file with Range support and
// records every request's Range header and every byte range it wrote.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServeOptions {
  /** Answer 200 with the whole file, as a server without range support does. */
  ignoreRange?: boolean;
  /** For a response of bytes [begin, end): how many body bytes to send before dropping the connection. */
  cut?: (begin: number, end: number) => number | undefined;
  status?: number;
  /** URL path (default /timm/vgg19.tv_in1k/model.safetensors). */
  path?: string;
}

export interface TestServer { url: string; served: [number, number][]; requests: (string | undefined)[]; bytes(): number; close(): Promise<void> }

/** Serves `file` with Range support; records every byte range written. */
export async function serve(file: Uint8Array, o: ServeOptions = {}): Promise<TestServer> {
  const served: [number, number][] = [];
  const requests: (string | undefined)[] = [];
  const server: Server = createServer((req, res) => {
    req.socket.on('error', () => {});
    res.on('error', () => {});
    requests.push(req.headers.range);
    if (o.status) { res.writeHead(o.status); res.end('nope'); return; }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let begin = 0;
    let end = file.length;
    const headers: Record<string, string> = { etag: '"v1"', 'content-type': 'application/octet-stream' };
    if (m && !o.ignoreRange) {
      begin = Number(m[1]);
      end = Math.min(file.length, m[2] ? Number(m[2]) + 1 : file.length);
      if (begin >= file.length) { res.writeHead(416, { 'content-range': `bytes */${file.length}` }); res.end(); return; }
      res.writeHead(206, { ...headers, 'content-length': String(end - begin), 'content-range': `bytes ${begin}-${end - 1}/${file.length}` });
    } else {
      res.writeHead(200, { ...headers, 'content-length': String(file.length) });
    }
    const n = o.cut?.(begin, end);
    if (n !== undefined && n < end - begin) {
      served.push([begin, begin + n]);
      res.write(file.subarray(begin, begin + n), () => res.socket?.destroy());
      return;
    }
    served.push([begin, end]);
    res.end(file.subarray(begin, end));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${o.path ?? '/timm/vgg19.tv_in1k/model.safetensors'}`,
    served, requests,
    bytes: () => served.reduce((a, [b, e]) => a + e - b, 0),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
