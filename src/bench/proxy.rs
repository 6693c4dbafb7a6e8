//! A TCP proxy that delays every byte by a fixed time each way, so a benchmark on one machine sees a
//! network's latency instead of loopback's: connection set-up through it pays the delay on every
//! message exchange, as it would against a server a few milliseconds away.
//!
//! One thread forwards every connection (a `mio::Poll`): what is read from one side is written to the
//! other `delay` later, in the order read. Bandwidth is not limited. A half-close is forwarded after
//! the delay too. `epoll_wait` counts in milliseconds, so a delay comes out up to a millisecond long.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// A running delaying proxy; dropping it stops the thread and closes every connection.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `target`, each direction
    /// delayed by `delay`.
    pub fn start(target: SocketAddr, delay: Duration) -> io::Result<DelayProxy> {
        let mut listener = TcpListener::bind("127.0.0.1:0".parse().expect("an address"))?;
        let addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let mut forwarder = Forwarder {
            poll,
            listener,
            target,
            delay,
            pairs: Vec::new(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("delay-proxy".into())
            .spawn(move || forwarder.run())?;
        Ok(DelayProxy {
            addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The port the proxy listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One proxied connection: side 0 faces the client, side 1 the server; `queues[s]` holds what is to
/// be written to side `s`, each piece with the time it is due (an empty piece: shut down writing).
struct Pair {
    socks: [TcpStream; 2],
    queues: [VecDeque<(Instant, Vec<u8>)>; 2],
    eof: [bool; 2],
}

struct Forwarder {
    poll: Poll,
    listener: TcpListener,
    target: SocketAddr,
    delay: Duration,
    pairs: Vec<Option<Pair>>,
    stop: Arc<AtomicBool>,
}

impl Forwarder {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut timeout = None;
        while !self.stop.load(Ordering::Relaxed) {
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != ErrorKind::Interrupted
            {
                return;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => {
                        let (p, side) = ((t - 2) / 2, (t - 2) % 2);
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read(p, side);
                        }
                    }
                }
            }
            timeout = self.flush();
        }
    }

    fn accept(&mut self) {
        while let Ok((client, _)) = self.listener.accept() {
            let Ok(server) = TcpStream::connect(self.target) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let slot = match self.pairs.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    self.pairs.push(None);
                    self.pairs.len() - 1
                }
            };
            let mut pair = Pair {
                socks: [client, server],
                queues: [VecDeque::new(), VecDeque::new()],
                eof: [false, false],
            };
            let registry = self.poll.registry();
            let both = Interest::READABLE | Interest::WRITABLE;
            let ok = registry
                .register(&mut pair.socks[0], Token(2 + 2 * slot), both)
                .and_then(|()| registry.register(&mut pair.socks[1], Token(3 + 2 * slot), both));
            if ok.is_ok() {
                self.pairs[slot] = Some(pair);
            }
        }
    }

    /// Reads everything side `side` of pair `p` has and queues it for the other side.
    fn read(&mut self, p: usize, side: usize) {
        let due = Instant::now() + self.delay;
        let Some(Some(pair)) = self.pairs.get_mut(p) else {
            return;
        };
        let mut buf = [0u8; 64 * 1024];
        while !pair.eof[side] {
            match pair.socks[side].read(&mut buf) {
                Ok(0) => {
                    pair.eof[side] = true;
                    pair.queues[1 - side].push_back((due, Vec::new()));
                }
                Ok(n) => pair.queues[1 - side].push_back((due, buf[..n].to_vec())),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(p);
                    return;
                }
            }
        }
    }

    fn close(&mut self, p: usize) {
        if let Some(mut pair) = self.pairs[p].take() {
            for s in &mut pair.socks {
                let _ = self.poll.registry().deregister(s);
            }
        }
    }

    /// Writes every piece that is due; returns how long until the next one is (`None`: none queued).
    fn flush(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for p in 0..self.pairs.len() {
            let Some(pair) = self.pairs[p].as_mut() else {
                continue;
            };
            let mut failed = false;
            for side in 0..2 {
                while let Some((due, bytes)) = pair.queues[side].front_mut() {
                    if *due > now {
                        next = Some(next.map_or(*due, |n| n.min(*due)));
                        break;
                    }
                    if bytes.is_empty() {
                        let _ = pair.socks[side].shutdown(Shutdown::Write);
                        pair.queues[side].pop_front();
                        continue;
                    }
                    match pair.socks[side].write(bytes) {
                        Ok(n) if n == bytes.len() => {
                            pair.queues[side].pop_front();
                        }
                        Ok(n) => {
                            bytes.drain(..n);
                        }
                        // Not connected yet, or the socket buffer is full: retried on the next
                        // pass (a WRITABLE event ends the wait).
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            next = Some(now + Duration::from_millis(1));
                            break;
                        }
                        Err(e) if e.kind() == ErrorKind::NotConnected => {
                            next = Some(now + Duration::from_millis(1));
                            break;
                        }
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
            }
            let done = pair.eof[0] && pair.eof[1] && pair.queues.iter().all(VecDeque::is_empty);
            if failed || done {
                self.close(p);
            }
        }
        next.map(|n| n.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream as StdStream;

    #[test]
    fn bytes_arrive_after_the_delay_both_ways() {
        let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let delay = Duration::from_millis(20);
        let proxy = DelayProxy::start(target, delay).unwrap();
        let mut c = StdStream::connect(("127.0.0.1", proxy.port())).unwrap();
        let t0 = Instant::now();
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
        assert!(t0.elapsed() >= 2 * delay, "{:?}", t0.elapsed());
        server.join().unwrap();
        // The server closed: the client sees the end of the stream, after the delay.
        assert_eq!(c.read(&mut back).unwrap(), 0);
        drop(proxy);
    }
}
