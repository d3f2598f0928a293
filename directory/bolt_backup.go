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

// CheckBackup reports whether the file at path is a whole store this
// package wrote (a backup to restore): a bbolt file as long as its header
// says, that passes bbolt's consistency check and holds the directory's
// buckets. It only reads the file.
func CheckBackup(path string) error {
	notStore := func(err error) error { return fmt.Errorf("directory: %s is not a foyer store: %w", path, err) }
	return viewWhole(path, notStore, func(tx *bbolt.Tx) error {
		var damage error
		for err := range tx.Check() { // read to the end: the check reads the file until it closes the channel
			if damage == nil {
				damage = fmt.Errorf("directory: %s is damaged: %w", path, err)
			}
		}
		if damage != nil {
			return damage
		}
		if tx.Bucket([]byte(bucketSites)) == nil || tx.Bucket([]byte(bucketDevices)) == nil {
			return fmt.Errorf("directory: %s is a bbolt file but not a foyer store (no sites or devices)", path)
		}
		return nil
	})
}

// Hold takes the store file's lock without changing the file (a read-only
// open), for as long as the caller keeps it (until release): while it is
// held no `foyer serve` opens the store, and if one holds it Hold fails
// with ErrLocked.
func Hold(path string) (release func() error, err error) {
	db, err := openReadOnly(path)
	if err != nil {
		return nil, openError(path, err)
	}
	return db.Close, nil
}

// checkWhole reports the store file at path, if there is one, cut short
// (wholeFile), before bbolt's read-write open reads its free-page list,
// wherever the header says it is.
func checkWhole(path string) error {
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return nil // none yet (a new store), or bbolt's own error to report
	}
	return viewWhole(path, func(err error) error { return openError(path, err) }, nil)
}

// viewWhole opens the store file at path read-only and, once it is known
// whole (wholeFile), runs fn (if any) in a read transaction. A failure to
// open is returned as openFailed words it.
func viewWhole(path string, openFailed func(error) error, fn func(*bbolt.Tx) error) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	db, err := openReadOnly(path)
	if err != nil {
		return openFailed(err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		if err := wholeFile(path, st.Size(), tx); err != nil || fn == nil {
			return err
		}
		return fn(tx)
	})
}

// openReadOnly opens the store file at path without changing it, waiting
// for a writer's lock as OpenBolt does.
func openReadOnly(path string) (*bbolt.DB, error) {
	return bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: boltLockTimeout})
}

// wholeFile reports a store file of size bytes shorter than its header
// says (tx, a read transaction on it, has read only the header). Check it
// before any other page is read: one past the file's end is a SIGBUS, a
// crash no caller can recover from.
func wholeFile(path string, size int64, tx *bbolt.Tx) error {
	if size < tx.Size() {
		return fmt.Errorf("directory: %s is cut short: %d bytes of the %d its header names (a copy or download that did not finish?)", path, size, tx.Size())
	}
	return nil
}
