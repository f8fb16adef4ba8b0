package h1

import (
	"bytes"
	"io"
	"net"
	"testing"
)

func TestSendFileUsesTheKernelOnLinux(t *testing.T) {
	f, data := testFile(t, 1<<20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sent, handled, err := sendFile(nc.(*net.TCPConn), f, 1000, 500000, 0)
	nc.Close()
	if !handled {
		t.Fatalf("sendFile did not use sendfile(2) (%v): the kernel refused it before sending anything", err)
	}
	if err != nil || sent != 500000 {
		t.Fatalf("sendFile = %d, %v; want 500000, nil", sent, err)
	}
	if b := <-got; !bytes.Equal(b, data[1000:501000]) {
		t.Errorf("received %d bytes, not the file region", len(b))
	}
}
