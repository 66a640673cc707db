package work

import (
	"fmt"
	"math/bits"
)

// BIP320Mask holds the version bits BIP 320 frees for rolling. Rolling bits
// outside it (30, 31 especially) makes the version invalid.
const BIP320Mask uint32 = 0x1fffe000

// RollingMask intersects the mask a pool granted with the BIP 320 bits; pools
// have been seen granting 0x5fffe000 or ffffffff.
func RollingMask(granted uint32) uint32 { return granted & BIP320Mask }

// RolledVersions is how many distinct versions a mask allows.
func RolledVersions(mask uint32) uint64 { return 1 << bits.OnesCount32(mask) }

// RollVersion deposits the bits of n into the positions of mask, over the
// job's version with those positions cleared. n = 0 gives the job version
// with the mask bits cleared, which equals it for every real job.
func RollVersion(jobVersion, mask uint32, n uint64) (uint32, error) {
	if n >= RolledVersions(mask) {
		return 0, fmt.Errorf("version roll %d is beyond the %d versions mask %08x allows", n, RolledVersions(mask), mask)
	}
	v := jobVersion &^ mask
	for m := mask; m != 0; m &= m - 1 {
		if n&1 != 0 {
			v |= m & -m
		}
		n >>= 1
	}
	return v, nil
}

// VersionBits is the sixth mining.submit param: the rolled version restricted
// to the mask. Pools combine it with the job version by OR, XOR or BIP 310's
// formula; all agree on this value when the job version has no mask bits set.
func VersionBits(rolled, mask uint32) uint32 { return rolled & mask }

// VersionGroup returns k units of u's job rolled under the BIP 320 mask,
// with u itself at index at and the rolls around u's own version (wrapping
// in the roll space) elsewhere: what a unit of k versions the ledger hands
// out looks like when u's version is one of them.
func VersionGroup(u *Unit, k, at int) ([]*Unit, error) {
	if k < 1 || at < 0 || at >= k {
		return nil, fmt.Errorf("index %d of %d versions", at, k)
	}
	mask := BIP320Mask
	var own uint64 // u's roll: its mask bits, gathered
	i := 0
	for m := mask; m != 0; m &= m - 1 {
		if u.Version&(m&-m) != 0 {
			own |= 1 << i
		}
		i++
	}
	total := RolledVersions(mask)
	units := make([]*Unit, k)
	for i := range units {
		if i == at {
			units[i] = u
			continue
		}
		v, err := RollVersion(u.Version, mask, (own+total+uint64(i)-uint64(at))%total)
		if err != nil {
			return nil, err
		}
		units[i] = u.WithVersion(v)
	}
	return units, nil
}
