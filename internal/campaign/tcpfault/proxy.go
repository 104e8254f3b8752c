// Package tcpfault is a TCP proxy that breaks the connections it carries on request: the fault
// campaign (internal/campaign) puts one between the terminal and ca-server, and one between
// ca-server and PostgreSQL, and arms one fault per case at a byte offset drawn from the seed.
//
// A fault fires once, at the k-th byte (counted from arming, across the connections opened
// since) flowing in one direction, on the connection that carries that byte:
//
//	Drop   the connection goes silent both ways (bytes are read and thrown away), as when a
//	       route or a NAT entry is lost: the peers find out only by their own timeouts;
//	Reset  both sides get a TCP RST (SO_LINGER 0);
//	Stall  nothing flows that way for Dur, then everything does again (a long outage);
//	Delay  the same for a short Dur (a slow link).
//
// Concurrency: all methods are safe for concurrent use.
package tcpfault

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Action is what happens when a fault fires.
type Action int

const (
	Drop Action = iota + 1
	Reset
	Stall
	Delay
)

func (a Action) String() string {
	switch a {
	case Drop:
		return "drop"
	case Reset:
		return "reset"
	case Stall:
		return "stall"
	case Delay:
		return "delay"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Dir is a direction through the proxy.
type Dir int

const (
	Up   Dir = iota // client to server
	Down            // server to client
)

func (d Dir) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// Fault is one armed fault.
type Fault struct {
	Action Action
	Dir    Dir
	AtByte int64         // fires when this many bytes have gone that way since Arm (0: the first byte)
	Dur    time.Duration // Stall and Delay
}

func (f Fault) String() string {
	s := fmt.Sprintf("%s %s @byte %d", f.Action, f.Dir, f.AtByte)
	if f.Action == Stall || f.Action == Delay {
		s += " for " + f.Dur.String()
	}
	return s
}

// Proxy forwards every connection accepted on its listener to Target.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	fault  *Fault
	count  [2]int64 // bytes per direction since Arm
	fired  bool
	conns  map[*link]struct{}
	closed bool
	wg     sync.WaitGroup
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	silent         chan struct{} // closed when a Drop fired on it
	once           sync.Once
}

// Listen starts a proxy on addr ("127.0.0.1:0" for any port) to target.
func Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Arm sets the fault for the bytes from now on (replacing one not yet fired).
func (p *Proxy) Arm(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.fired, p.count = &f, false, [2]int64{}
}

// Disarm removes the fault; a Stall in progress runs to its end.
func (p *Proxy) Disarm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = nil
}

// Fired reports whether the armed fault has fired.
func (p *Proxy) Fired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fired
}

// ResetAll resets every open connection now (the database's connections cut mid-transaction).
func (p *Proxy) ResetAll() int {
	p.mu.Lock()
	ls := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	for _, l := range ls {
		l.reset()
	}
	return len(ls)
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.ResetAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close() // the server is down: the client sees the connection closed
			continue
		}
		l := &link{client: c, server: s, silent: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			done := make(chan struct{}, 2)
			go func() { p.pipe(l, Up, s, c); done <- struct{}{} }()
			go func() { p.pipe(l, Down, c, s); done <- struct{}{} }()
			<-done
			// One side ended: end the other (a half-close is not what TLS clients do here).
			l.close()
			<-done
			p.mu.Lock()
			delete(p.conns, l)
			p.mu.Unlock()
		}()
	}
}

func (l *link) close() {
	l.client.Close()
	l.server.Close()
}

func (l *link) reset() {
	for _, c := range []net.Conn{l.client, l.server} {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
	}
	l.close()
}

// take accounts n bytes going dir and returns how many of them may go before the fault, and
// the fault if it fires inside them.
func (p *Proxy) take(dir Dir, n int) (int, *Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.count[dir]
	p.count[dir] += int64(n)
	f := p.fault
	if f == nil || p.fired || f.Dir != dir || f.AtByte >= before+int64(n) {
		return n, nil
	}
	p.fired = true
	at := f.AtByte - before
	if at < 0 {
		at = 0
	}
	return int(at), f
}

// pipe copies src to dst in direction dir, applying the fault when it fires.
func (p *Proxy) pipe(l *link, dir Dir, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-l.silent:
				continue // dropped: read and throw away
			default:
			}
			ok, f := p.take(dir, n)
			if _, werr := dst.Write(buf[:ok]); werr != nil {
				return
			}
			rest := buf[ok:n]
			if f != nil {
				switch f.Action {
				case Drop:
					l.once.Do(func() { close(l.silent) })
					continue
				case Reset:
					l.reset()
					return
				case Stall, Delay:
					time.Sleep(f.Dur)
				}
			}
			if len(rest) > 0 {
				if _, werr := dst.Write(rest); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}
