package directory

import (
	"fmt"
	"io"
	"os"

	"go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole store file to a new file
// in dir and returns it open at its start. The copy is the file's state
// at one instant (a read transaction: writes go on meanwhile), and holds
// everything kept in the file: the directory, and the accounts, sessions
// and logs that share it. Its name is removed at once: it is freed when
// the caller closes it, and a crash leaves nothing behind. dir should be
// on the store's own disk (the data directory, private to the server): a
// backup is as secret as the store.
func (b *Bolt) Backup(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".backup-*.db")
	if err != nil {
		return nil, fmt.Errorf("directory: backup: %w", err)
	}
	_ = os.Remove(f.Name())
	err = b.db.View(func(tx *bbolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("directory: backup: %w", err)
	}
	return f, nil
}
