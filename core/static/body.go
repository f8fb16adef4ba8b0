package static

import (
	"io"
	"os"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
)

// copyBufferSize is the largest buffer borrowed to copy a file region when
// the front end cannot send it from the file itself.
const copyBufferSize = 64 << 10

// send writes length bytes of the representation from offset: from
// memory for a small file the entry holds, else from the file.
func (rep *representation) send(w message.ResponseWriter, offset, length int64) error {
	if rep.body != nil {
		_, err := w.Write(rep.body[offset : offset+length])
		return err
	}
	return sendRegion(w, rep.file, offset, length)
}

// sendRegion sends length bytes of f from offset: through
// message.FileWriter when w offers it (sendfile), else by copying.
func sendRegion(w message.ResponseWriter, f *os.File, offset, length int64) error {
	if fw, ok := w.(message.FileWriter); ok {
		n, err := fw.WriteFile(f, offset, length)
		if err == nil && n != length {
			err = io.ErrShortWrite
		}
		return err
	}
	return copyRegion(w, f, offset, length)
}

// copyRegion copies length bytes of f from offset to w through a buffer
// borrowed from core/pool, reading at explicit offsets so that concurrent
// requests can share f. A file that shrank meanwhile ends the copy with
// io.ErrUnexpectedEOF.
func copyRegion(w io.Writer, f *os.File, offset, length int64) error {
	bp := pool.Get(int(min(length, copyBufferSize)))
	defer pool.Put(bp)
	buf := *bp
	for length > 0 {
		chunk := buf[:min(int64(len(buf)), length)]
		n, err := f.ReadAt(chunk, offset)
		if n > 0 {
			if _, werr := w.Write(chunk[:n]); werr != nil {
				return werr
			}
		}
		if n < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		offset += int64(n)
		length -= int64(n)
	}
	return nil
}
