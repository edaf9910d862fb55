//go:build !linux

package main

import "time"

// hold sleeps d (a Go timer: see hold_linux.go for why Linux does better).
func hold(d time.Duration) error {
	time.Sleep(d)
	return nil
}
