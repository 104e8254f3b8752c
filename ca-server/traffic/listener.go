package traffic

import (
	"net"
	"net/netip"
	"sync"
)

// ConnLimits caps the connections of one listener: Total at once, PerAddress
// from one source address. Zero means no cap.
type ConnLimits struct {
	Total, PerAddress int
}

// Limit wraps ln so that a connection beyond a cap is closed as soon as it
// is accepted (before any TLS handshake) and counted, rather than left
// waiting in the backlog as netutil.LimitListener does: a slow client
// holding every slot must not make honest ones hang, and a refusal is
// visible in the metrics. Together with the servers' header and idle
// timeouts this bounds the memory and goroutines connections can take.
func Limit(ln net.Listener, listener string, lim ConnLimits, m *Metrics) net.Listener {
	return &limitListener{Listener: ln, name: listener, lim: lim, m: m, per: map[netip.Addr]int{}}
}

type limitListener struct {
	net.Listener
	name string
	lim  ConnLimits
	m    *Metrics

	mu    sync.Mutex
	total int
	per   map[netip.Addr]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var addr netip.Addr
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			addr = ap.Addr().Unmap()
		}
		l.mu.Lock()
		reason := ""
		switch {
		case l.lim.Total > 0 && l.total >= l.lim.Total:
			reason = "total"
		case l.lim.PerAddress > 0 && l.per[addr] >= l.lim.PerAddress:
			reason = "per_address"
		default:
			l.total++
			l.per[addr]++
		}
		l.mu.Unlock()
		if reason != "" {
			c.Close()
			l.m.connRefused(l.name, reason)
			continue
		}
		l.m.connOpen(l.name, 1)
		return &limitConn{Conn: c, l: l, addr: addr}, nil
	}
}

// Open reports the connections open now (tests, metrics).
func (l *limitListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

type limitConn struct {
	net.Conn
	l    *limitListener
	addr netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.total--
		if c.l.per[c.addr]--; c.l.per[c.addr] <= 0 {
			delete(c.l.per, c.addr)
		}
		c.l.mu.Unlock()
		c.l.m.connOpen(c.l.name, -1)
	})
	return err
}
