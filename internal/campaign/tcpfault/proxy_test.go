package tcpfault

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every connection with what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func dialProxy(t *testing.T, f *Fault) (*Proxy, net.Conn) {
	t.Helper()
	p, err := Listen("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if f != nil {
		p.Arm(*f)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, c
}

func TestProxyPassesBytesWithoutFault(t *testing.T) {
	_, c := dialProxy(t, nil)
	msg := bytes.Repeat([]byte("madoguchi"), 1000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the proxy: %v", err)
	}
}

// A reset at byte k lets exactly k bytes through, then the client's connection ends.
func TestProxyResetAtByte(t *testing.T) {
	p, c := dialProxy(t, &Fault{Action: Reset, Dir: Down, AtByte: 100})
	go c.Write(make([]byte, 1000))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err == nil && len(got) == 1000 {
		t.Fatal("the whole answer came through a reset")
	}
	if len(got) != 100 {
		t.Errorf("%d bytes before the reset, want 100", len(got))
	}
	if !p.Fired() {
		t.Error("Fired() false after the reset")
	}
}

// A dropped connection stays open but carries nothing more, either way.
func TestProxyDropGoesSilent(t *testing.T) {
	_, c := dialProxy(t, &Fault{Action: Drop, Dir: Up, AtByte: 10})
	c.Write(make([]byte, 50))
	c.SetReadDeadline(time.Now().Add(time.Second))
	got, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read after a drop: %v (want a timeout: the peer never learns)", err)
	}
	if len(got) > 10 {
		t.Errorf("%d bytes echoed, want at most the 10 before the drop", len(got))
	}
}

// A stall holds the bytes back and then delivers all of them.
func TestProxyStallDelivers(t *testing.T) {
	_, c := dialProxy(t, &Fault{Action: Stall, Dir: Up, AtByte: 5, Dur: 300 * time.Millisecond})
	msg := []byte("0123456789")
	c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("after a stall: %q %v", got, err)
	}
}
