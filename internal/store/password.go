package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// argonConfig is the cost of new argon2id hashes. Verification uses the parameters stored in
// each hash, so changing the cost never locks anyone out.
type argonConfig struct {
	time    uint32
	memory  uint32 // KiB
	threads uint8
	keyLen  uint32
	saltLen int
}

// argonParams follows OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane). Tests
// lower it so that they stay fast.
var argonParams = argonConfig{time: 2, memory: 19 * 1024, threads: 1, keyLen: 32, saltLen: 16}

var b64 = base64.RawStdEncoding

// hashPassword returns password's argon2id hash in PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func hashPassword(password string) (string, error) {
	p := argonParams
	salt := make([]byte, p.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("unrecognised password hash")

// maxPasswordChecks is how many password checks may run at once: two per CPU. An argon2id
// check takes argonParams.memory (19 MiB) for its duration, so without a bound a flood of
// logins from many addresses (each under auth.max_failures) could ask for gigabytes at
// once; with it, checks beyond the bound wait their turn and the memory stays at about
// 2 × GOMAXPROCS × 19 MiB. Checks are CPU-bound, so more than that would not finish sooner.
func maxPasswordChecks() int { return max(2, 2*runtime.GOMAXPROCS(0)) }

// verifyPassword is checkPassword; tests replace it to watch how many checks run at once.
var verifyPassword = checkPassword

// checkPassword runs one password check once a slot in s.checks is free, or gives up with
// ctx's error when ctx ends first (the session went away). Only checks wait: a login the
// login cache answers never takes a slot, so a correct login does not queue behind an
// attacker's hashes.
func (s *Store) checkPassword(ctx context.Context, hash, password string) (bool, error) {
	select {
	case s.checks <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("store: wait for a password check: %w", ctx.Err())
	}
	defer func() { <-s.checks }()
	return verifyPassword(hash, password)
}

// checkPassword reports whether password matches hash (argon2id PHC string, or bcrypt
// $2a$/$2b$/$2y$ as other tools write them).
func checkPassword(hash, password string) (bool, error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return checkArgon2id(hash, password)
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	return false, errBadHash
}

func checkArgon2id(hash, password string) (bool, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	f := strings.Split(hash, "$")
	if len(f) != 6 {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(f[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || t == 0 || p == 0 {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(f[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(f[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when the user is unknown, so that a failed login takes as
// long whether or not the account exists.
var dummyHash = sync.OnceValue(func() string {
	h, err := hashPassword("letterbox dummy password")
	if err != nil {
		panic(err) // crypto/rand failed: nothing sensible is left to do
	}
	return h
})
