import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { listensOn } from './setup/main-process';

describe('startMain counts an answer on its port only when its own child listens there (the port race)', () => {
  it('listensOn: true for the process holding the listening socket, false for any other process', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      await once(other, 'spawn');
      expect(listensOn(process.pid, port)).toBe(true); // this process answers on the port…
      expect(listensOn(other.pid!, port)).toBe(false); // …so a child started for it would be refused its answers
    } finally {
      other.kill('SIGKILL');
      server.close();
    }
  });
});
