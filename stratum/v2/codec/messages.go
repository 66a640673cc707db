package codec

import (
	"errors"
	"fmt"
)

// Message types (sv2-spec §8).
const (
	TypeSetupConnection                  = 0x00
	TypeSetupConnectionSuccess           = 0x01
	TypeSetupConnectionError             = 0x02
	TypeReconnect                        = 0x04
	TypeOpenStandardMiningChannel        = 0x10
	TypeOpenStandardMiningChannelSuccess = 0x11
	TypeOpenMiningChannelError           = 0x12
	TypeOpenExtendedMiningChannel        = 0x13
	TypeOpenExtendedMiningChannelSuccess = 0x14
	TypeNewMiningJob                     = 0x15
	TypeUpdateChannel                    = 0x16
	TypeUpdateChannelError               = 0x17
	TypeCloseChannel                     = 0x18
	TypeSetExtranoncePrefix              = 0x19
	TypeSubmitSharesStandard             = 0x1a
	TypeSubmitSharesExtended             = 0x1b
	TypeSubmitSharesSuccess              = 0x1c
	TypeSubmitSharesError                = 0x1d
	TypeNewExtendedMiningJob             = 0x1f
	TypeSetNewPrevHash                   = 0x20
	TypeSetTarget                        = 0x21
)

// SetupConnection protocol and flags for the Mining Protocol (§5.3.1).
const (
	ProtocolMining = 0

	FlagRequiresStandardJobs   = 1 << 0
	FlagRequiresWorkSelection  = 1 << 1
	FlagRequiresVersionRolling = 1 << 2

	// Flags of SetupConnection.Success.
	FlagRequiresFixedVersion     = 1 << 0
	FlagRequiresExtendedChannels = 1 << 1
)

// MaxExtranoncePrefix is B0_32's bound.
const MaxExtranoncePrefix = 32

// MaxMerklePath bounds a merkle path: SEQ0_255 allows 255, a block needs
// about 14, and clminer's job limit is work.MaxMerkleBranches.
const MaxMerklePath = 32

// Message is one typed Stratum V2 message.
type Message interface {
	// MsgType is the frame's msg_type.
	MsgType() uint8
	// Name is the spec's name, for errors and logs.
	Name() string
	encode(w *writer)
	decode(r *reader)
}

// channelMsg lists the types sent with the channel_msg bit.
var channelMsg = map[uint8]bool{
	TypeNewMiningJob: true, TypeUpdateChannel: true, TypeUpdateChannelError: true, TypeCloseChannel: true,
	TypeSetExtranoncePrefix: true, TypeSubmitSharesStandard: true, TypeSubmitSharesSuccess: true,
	TypeSubmitSharesError: true, TypeSetNewPrevHash: true, TypeSetTarget: true,
	TypeSubmitSharesExtended: true, TypeNewExtendedMiningJob: true,
}

var constructors = map[uint8]func() Message{
	TypeSetupConnection:                  func() Message { return new(SetupConnection) },
	TypeSetupConnectionSuccess:           func() Message { return new(SetupConnectionSuccess) },
	TypeSetupConnectionError:             func() Message { return new(SetupConnectionError) },
	TypeReconnect:                        func() Message { return new(Reconnect) },
	TypeOpenStandardMiningChannel:        func() Message { return new(OpenStandardMiningChannel) },
	TypeOpenStandardMiningChannelSuccess: func() Message { return new(OpenStandardMiningChannelSuccess) },
	TypeOpenMiningChannelError:           func() Message { return new(OpenMiningChannelError) },
	TypeNewMiningJob:                     func() Message { return new(NewMiningJob) },
	TypeUpdateChannel:                    func() Message { return new(UpdateChannel) },
	TypeUpdateChannelError:               func() Message { return new(UpdateChannelError) },
	TypeCloseChannel:                     func() Message { return new(CloseChannel) },
	TypeSetExtranoncePrefix:              func() Message { return new(SetExtranoncePrefix) },
	TypeSubmitSharesStandard:             func() Message { return new(SubmitSharesStandard) },
	TypeSubmitSharesSuccess:              func() Message { return new(SubmitSharesSuccess) },
	TypeSubmitSharesError:                func() Message { return new(SubmitSharesError) },
	TypeSetNewPrevHash:                   func() Message { return new(SetNewPrevHash) },
	TypeSetTarget:                        func() Message { return new(SetTarget) },
	TypeOpenExtendedMiningChannel:        func() Message { return new(OpenExtendedMiningChannel) },
	TypeOpenExtendedMiningChannelSuccess: func() Message { return new(OpenExtendedMiningChannelSuccess) },
	TypeNewExtendedMiningJob:             func() Message { return new(NewExtendedMiningJob) },
	TypeSubmitSharesExtended:             func() Message { return new(SubmitSharesExtended) },
}

// Encode serialises m and returns its frame header and payload.
func Encode(m Message) (Header, []byte, error) {
	w := &writer{msg: m.Name()}
	m.encode(w)
	if w.err != nil {
		return Header{}, nil, w.err
	}
	if len(w.b) > MaxPayload {
		return Header{}, nil, fmt.Errorf("sv2 %s: %d-byte payload does not fit a frame", m.Name(), len(w.b))
	}
	h := Header{MsgType: m.MsgType(), Length: uint32(len(w.b))}
	if channelMsg[m.MsgType()] {
		h.ExtensionType = ChannelBit
	}
	return h, w.b, nil
}

// ErrUnknown is returned for a frame of an extension or type this package
// does not know; the spec says such frames are ignored.
var ErrUnknown = errors.New("unknown sv2 message")

// Decode parses a payload of the type its header names.
func Decode(h Header, payload []byte) (Message, error) {
	if int(h.Length) != len(payload) {
		return nil, fmt.Errorf("sv2 frame: header says %d payload bytes, got %d", h.Length, len(payload))
	}
	mk := constructors[h.MsgType]
	if h.ExtensionType&^ChannelBit != 0 || mk == nil {
		return nil, fmt.Errorf("%w: extension %#04x type %#02x", ErrUnknown, h.ExtensionType, h.MsgType)
	}
	m := mk()
	r := &reader{msg: m.Name(), b: payload}
	m.decode(r)
	if err := r.done(); err != nil {
		return nil, err
	}
	return m, nil
}

// SetupConnection opens every connection (§3.6.1).
type SetupConnection struct {
	Protocol                uint8
	MinVersion, MaxVersion  uint16
	Flags                   uint32
	EndpointHost            string
	EndpointPort            uint16
	Vendor, HardwareVersion string
	Firmware, DeviceID      string
}

func (*SetupConnection) MsgType() uint8 { return TypeSetupConnection }
func (*SetupConnection) Name() string   { return "SetupConnection" }
func (m *SetupConnection) encode(w *writer) {
	w.u8(m.Protocol)
	w.u16(m.MinVersion)
	w.u16(m.MaxVersion)
	w.u32(m.Flags)
	w.str("endpoint_host", m.EndpointHost)
	w.u16(m.EndpointPort)
	w.str("vendor", m.Vendor)
	w.str("hardware_version", m.HardwareVersion)
	w.str("firmware", m.Firmware)
	w.str("device_id", m.DeviceID)
}
func (m *SetupConnection) decode(r *reader) {
	m.Protocol = r.u8("protocol")
	m.MinVersion = r.u16("min_version")
	m.MaxVersion = r.u16("max_version")
	m.Flags = r.u32("flags")
	m.EndpointHost = r.str("endpoint_host")
	m.EndpointPort = r.u16("endpoint_port")
	m.Vendor = r.str("vendor")
	m.HardwareVersion = r.str("hardware_version")
	m.Firmware = r.str("firmware")
	m.DeviceID = r.str("device_id")
}

// SetupConnectionSuccess accepts the connection.
type SetupConnectionSuccess struct {
	UsedVersion uint16
	Flags       uint32
}

func (*SetupConnectionSuccess) MsgType() uint8 { return TypeSetupConnectionSuccess }
func (*SetupConnectionSuccess) Name() string   { return "SetupConnection.Success" }
func (m *SetupConnectionSuccess) encode(w *writer) {
	w.u16(m.UsedVersion)
	w.u32(m.Flags)
}
func (m *SetupConnectionSuccess) decode(r *reader) {
	m.UsedVersion = r.u16("used_version")
	m.Flags = r.u32("flags")
}

// SetupConnectionError refuses it.
type SetupConnectionError struct {
	Flags     uint32
	ErrorCode string
}

func (*SetupConnectionError) MsgType() uint8 { return TypeSetupConnectionError }
func (*SetupConnectionError) Name() string   { return "SetupConnection.Error" }
func (m *SetupConnectionError) encode(w *writer) {
	w.u32(m.Flags)
	w.str("error_code", m.ErrorCode)
}
func (m *SetupConnectionError) decode(r *reader) {
	m.Flags = r.u32("flags")
	m.ErrorCode = r.str("error_code")
}

// Reconnect redirects the client; it carries no key, so the new server must
// present a certificate by the same authority (§3.6.5).
type Reconnect struct {
	NewHost string
	NewPort uint16
}

func (*Reconnect) MsgType() uint8 { return TypeReconnect }
func (*Reconnect) Name() string   { return "Reconnect" }
func (m *Reconnect) encode(w *writer) {
	w.str("new_host", m.NewHost)
	w.u16(m.NewPort)
}
func (m *Reconnect) decode(r *reader) {
	m.NewHost = r.str("new_host")
	m.NewPort = r.u16("new_port")
}

// OpenStandardMiningChannel asks for a header-only channel (§5.3.2).
type OpenStandardMiningChannel struct {
	RequestID       uint32
	UserIdentity    string
	NominalHashRate float32
	MaxTarget       [32]byte
}

func (*OpenStandardMiningChannel) MsgType() uint8 { return TypeOpenStandardMiningChannel }
func (*OpenStandardMiningChannel) Name() string   { return "OpenStandardMiningChannel" }
func (m *OpenStandardMiningChannel) encode(w *writer) {
	w.u32(m.RequestID)
	w.str("user_identity", m.UserIdentity)
	w.f32(m.NominalHashRate)
	w.u256(m.MaxTarget)
}
func (m *OpenStandardMiningChannel) decode(r *reader) {
	m.RequestID = r.u32("request_id")
	m.UserIdentity = r.str("user_identity")
	m.NominalHashRate = r.f32("nominal_hash_rate")
	m.MaxTarget = r.u256("max_target")
}

// OpenStandardMiningChannelSuccess opens it.
type OpenStandardMiningChannelSuccess struct {
	RequestID        uint32
	ChannelID        uint32
	Target           [32]byte
	ExtranoncePrefix []byte
	GroupChannelID   uint32
}

func (*OpenStandardMiningChannelSuccess) MsgType() uint8 { return TypeOpenStandardMiningChannelSuccess }
func (*OpenStandardMiningChannelSuccess) Name() string   { return "OpenStandardMiningChannel.Success" }
func (m *OpenStandardMiningChannelSuccess) encode(w *writer) {
	w.u32(m.RequestID)
	w.u32(m.ChannelID)
	w.u256(m.Target)
	w.bytes8("extranonce_prefix", m.ExtranoncePrefix, MaxExtranoncePrefix)
	w.u32(m.GroupChannelID)
}
func (m *OpenStandardMiningChannelSuccess) decode(r *reader) {
	m.RequestID = r.u32("request_id")
	m.ChannelID = r.u32("channel_id")
	m.Target = r.u256("target")
	m.ExtranoncePrefix = r.bytes8("extranonce_prefix", MaxExtranoncePrefix)
	m.GroupChannelID = r.u32("group_channel_id")
}

// OpenMiningChannelError refuses a channel.
type OpenMiningChannelError struct {
	RequestID uint32
	ErrorCode string
}

func (*OpenMiningChannelError) MsgType() uint8 { return TypeOpenMiningChannelError }
func (*OpenMiningChannelError) Name() string   { return "OpenMiningChannel.Error" }
func (m *OpenMiningChannelError) encode(w *writer) {
	w.u32(m.RequestID)
	w.str("error_code", m.ErrorCode)
}
func (m *OpenMiningChannelError) decode(r *reader) {
	m.RequestID = r.u32("request_id")
	m.ErrorCode = r.str("error_code")
}

// NewMiningJob is a standard job: the merkle root is fixed (§5.3.15). A nil
// MinNTime is a future job, activated by SetNewPrevHash.
type NewMiningJob struct {
	ChannelID  uint32
	JobID      uint32
	MinNTime   *uint32
	Version    uint32
	MerkleRoot [32]byte
}

func (*NewMiningJob) MsgType() uint8 { return TypeNewMiningJob }
func (*NewMiningJob) Name() string   { return "NewMiningJob" }
func (m *NewMiningJob) encode(w *writer) {
	w.u32(m.ChannelID)
	w.u32(m.JobID)
	w.optU32(m.MinNTime)
	w.u32(m.Version)
	w.u256(m.MerkleRoot)
}
func (m *NewMiningJob) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.JobID = r.u32("job_id")
	m.MinNTime = r.optU32("min_ntime")
	m.Version = r.u32("version")
	m.MerkleRoot = r.u256("merkle_root")
}

// UpdateChannel reports a new nominal hashrate (§5.3.7).
type UpdateChannel struct {
	ChannelID       uint32
	NominalHashRate float32
	MaximumTarget   [32]byte
}

func (*UpdateChannel) MsgType() uint8 { return TypeUpdateChannel }
func (*UpdateChannel) Name() string   { return "UpdateChannel" }
func (m *UpdateChannel) encode(w *writer) {
	w.u32(m.ChannelID)
	w.f32(m.NominalHashRate)
	w.u256(m.MaximumTarget)
}
func (m *UpdateChannel) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.NominalHashRate = r.f32("nominal_hash_rate")
	m.MaximumTarget = r.u256("maximum_target")
}

// UpdateChannelError refuses an UpdateChannel.
type UpdateChannelError struct {
	ChannelID uint32
	ErrorCode string
}

func (*UpdateChannelError) MsgType() uint8 { return TypeUpdateChannelError }
func (*UpdateChannelError) Name() string   { return "UpdateChannel.Error" }
func (m *UpdateChannelError) encode(w *writer) {
	w.u32(m.ChannelID)
	w.str("error_code", m.ErrorCode)
}
func (m *UpdateChannelError) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.ErrorCode = r.str("error_code")
}

// CloseChannel ends a channel, from either side.
type CloseChannel struct {
	ChannelID  uint32
	ReasonCode string
}

func (*CloseChannel) MsgType() uint8 { return TypeCloseChannel }
func (*CloseChannel) Name() string   { return "CloseChannel" }
func (m *CloseChannel) encode(w *writer) {
	w.u32(m.ChannelID)
	w.str("reason_code", m.ReasonCode)
}
func (m *CloseChannel) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.ReasonCode = r.str("reason_code")
}

// SetExtranoncePrefix changes the channel's extranonce prefix; for a
// standard channel it only changes the merkle roots of later jobs.
type SetExtranoncePrefix struct {
	ChannelID        uint32
	ExtranoncePrefix []byte
}

func (*SetExtranoncePrefix) MsgType() uint8 { return TypeSetExtranoncePrefix }
func (*SetExtranoncePrefix) Name() string   { return "SetExtranoncePrefix" }
func (m *SetExtranoncePrefix) encode(w *writer) {
	w.u32(m.ChannelID)
	w.bytes8("extranonce_prefix", m.ExtranoncePrefix, MaxExtranoncePrefix)
}
func (m *SetExtranoncePrefix) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.ExtranoncePrefix = r.bytes8("extranonce_prefix", MaxExtranoncePrefix)
}

// SubmitSharesStandard submits one share of a standard job (§5.3.11).
type SubmitSharesStandard struct {
	ChannelID      uint32
	SequenceNumber uint32
	JobID          uint32
	Nonce          uint32
	NTime          uint32
	Version        uint32
}

func (*SubmitSharesStandard) MsgType() uint8 { return TypeSubmitSharesStandard }
func (*SubmitSharesStandard) Name() string   { return "SubmitSharesStandard" }
func (m *SubmitSharesStandard) encode(w *writer) {
	w.u32(m.ChannelID)
	w.u32(m.SequenceNumber)
	w.u32(m.JobID)
	w.u32(m.Nonce)
	w.u32(m.NTime)
	w.u32(m.Version)
}
func (m *SubmitSharesStandard) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.SequenceNumber = r.u32("sequence_number")
	m.JobID = r.u32("job_id")
	m.Nonce = r.u32("nonce")
	m.NTime = r.u32("ntime")
	m.Version = r.u32("version")
}

// SubmitSharesSuccess acknowledges every submit up to LastSequenceNumber
// not already answered (§5.3.13): acknowledgements come in batches.
type SubmitSharesSuccess struct {
	ChannelID               uint32
	LastSequenceNumber      uint32
	NewSubmitsAcceptedCount uint32
	NewSharesSum            uint64
}

func (*SubmitSharesSuccess) MsgType() uint8 { return TypeSubmitSharesSuccess }
func (*SubmitSharesSuccess) Name() string   { return "SubmitShares.Success" }
func (m *SubmitSharesSuccess) encode(w *writer) {
	w.u32(m.ChannelID)
	w.u32(m.LastSequenceNumber)
	w.u32(m.NewSubmitsAcceptedCount)
	w.u64(m.NewSharesSum)
}
func (m *SubmitSharesSuccess) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.LastSequenceNumber = r.u32("last_sequence_number")
	m.NewSubmitsAcceptedCount = r.u32("new_submits_accepted_count")
	m.NewSharesSum = r.u64("new_shares_sum")
}

// SubmitSharesError rejects one submit.
type SubmitSharesError struct {
	ChannelID      uint32
	SequenceNumber uint32
	ErrorCode      string
}

func (*SubmitSharesError) MsgType() uint8 { return TypeSubmitSharesError }
func (*SubmitSharesError) Name() string   { return "SubmitShares.Error" }
func (m *SubmitSharesError) encode(w *writer) {
	w.u32(m.ChannelID)
	w.u32(m.SequenceNumber)
	w.str("error_code", m.ErrorCode)
}
func (m *SubmitSharesError) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.SequenceNumber = r.u32("sequence_number")
	m.ErrorCode = r.str("error_code")
}

// SetNewPrevHash activates the future job JobID on a new block (§5.3.17);
// every other job of the channel is gone.
type SetNewPrevHash struct {
	ChannelID uint32
	JobID     uint32
	PrevHash  [32]byte
	MinNTime  uint32
	NBits     uint32
}

func (*SetNewPrevHash) MsgType() uint8 { return TypeSetNewPrevHash }
func (*SetNewPrevHash) Name() string   { return "SetNewPrevHash" }
func (m *SetNewPrevHash) encode(w *writer) {
	w.u32(m.ChannelID)
	w.u32(m.JobID)
	w.u256(m.PrevHash)
	w.u32(m.MinNTime)
	w.u32(m.NBits)
}
func (m *SetNewPrevHash) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.JobID = r.u32("job_id")
	m.PrevHash = r.u256("prev_hash")
	m.MinNTime = r.u32("min_ntime")
	m.NBits = r.u32("nbits")
}

// SetTarget sets the channel's share target, at once.
type SetTarget struct {
	ChannelID     uint32
	MaximumTarget [32]byte
}

func (*SetTarget) MsgType() uint8 { return TypeSetTarget }
func (*SetTarget) Name() string   { return "SetTarget" }
func (m *SetTarget) encode(w *writer) {
	w.u32(m.ChannelID)
	w.u256(m.MaximumTarget)
}
func (m *SetTarget) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.MaximumTarget = r.u256("maximum_target")
}

// OpenExtendedMiningChannel asks for a channel whose jobs carry the
// coinbase, so the miner rolls an extranonce (§5.3.4).
type OpenExtendedMiningChannel struct {
	OpenStandardMiningChannel
	MinExtranonceSize uint16
}

func (*OpenExtendedMiningChannel) MsgType() uint8 { return TypeOpenExtendedMiningChannel }
func (*OpenExtendedMiningChannel) Name() string   { return "OpenExtendedMiningChannel" }
func (m *OpenExtendedMiningChannel) encode(w *writer) {
	m.OpenStandardMiningChannel.encode(w)
	w.u16(m.MinExtranonceSize)
}
func (m *OpenExtendedMiningChannel) decode(r *reader) {
	m.OpenStandardMiningChannel.decode(r)
	m.MinExtranonceSize = r.u16("min_extranonce_size")
}

// OpenExtendedMiningChannelSuccess opens it (§5.3.5).
type OpenExtendedMiningChannelSuccess struct {
	RequestID        uint32
	ChannelID        uint32
	Target           [32]byte
	ExtranonceSize   uint16
	ExtranoncePrefix []byte
	GroupChannelID   uint32
}

func (*OpenExtendedMiningChannelSuccess) MsgType() uint8 { return TypeOpenExtendedMiningChannelSuccess }
func (*OpenExtendedMiningChannelSuccess) Name() string   { return "OpenExtendedMiningChannel.Success" }
func (m *OpenExtendedMiningChannelSuccess) encode(w *writer) {
	w.u32(m.RequestID)
	w.u32(m.ChannelID)
	w.u256(m.Target)
	w.u16(m.ExtranonceSize)
	w.bytes8("extranonce_prefix", m.ExtranoncePrefix, MaxExtranoncePrefix)
	w.u32(m.GroupChannelID)
}
func (m *OpenExtendedMiningChannelSuccess) decode(r *reader) {
	m.RequestID = r.u32("request_id")
	m.ChannelID = r.u32("channel_id")
	m.Target = r.u256("target")
	m.ExtranonceSize = r.u16("extranonce_size")
	m.ExtranoncePrefix = r.bytes8("extranonce_prefix", MaxExtranoncePrefix)
	m.GroupChannelID = r.u32("group_channel_id")
}

// NewExtendedMiningJob is a job with its coinbase split around the
// extranonce (prefix || extranonce_prefix || extranonce || suffix) and the
// merkle path from the coinbase up (§5.3.16).
type NewExtendedMiningJob struct {
	ChannelID             uint32
	JobID                 uint32
	MinNTime              *uint32
	Version               uint32
	VersionRollingAllowed bool
	MerklePath            [][32]byte
	CoinbaseTxPrefix      []byte
	CoinbaseTxSuffix      []byte
}

func (*NewExtendedMiningJob) MsgType() uint8 { return TypeNewExtendedMiningJob }
func (*NewExtendedMiningJob) Name() string   { return "NewExtendedMiningJob" }
func (m *NewExtendedMiningJob) encode(w *writer) {
	w.u32(m.ChannelID)
	w.u32(m.JobID)
	w.optU32(m.MinNTime)
	w.u32(m.Version)
	w.boolean(m.VersionRollingAllowed)
	w.seqU256("merkle_path", m.MerklePath, MaxMerklePath)
	w.bytes16("coinbase_tx_prefix", m.CoinbaseTxPrefix)
	w.bytes16("coinbase_tx_suffix", m.CoinbaseTxSuffix)
}
func (m *NewExtendedMiningJob) decode(r *reader) {
	m.ChannelID = r.u32("channel_id")
	m.JobID = r.u32("job_id")
	m.MinNTime = r.optU32("min_ntime")
	m.Version = r.u32("version")
	m.VersionRollingAllowed = r.boolean("version_rolling_allowed")
	m.MerklePath = r.seqU256("merkle_path", MaxMerklePath)
	m.CoinbaseTxPrefix = r.bytes16("coinbase_tx_prefix")
	m.CoinbaseTxSuffix = r.bytes16("coinbase_tx_suffix")
}

// SubmitSharesExtended is SubmitSharesStandard plus the extranonce the
// miner rolled (§5.3.12).
type SubmitSharesExtended struct {
	SubmitSharesStandard
	Extranonce []byte
}

func (*SubmitSharesExtended) MsgType() uint8 { return TypeSubmitSharesExtended }
func (*SubmitSharesExtended) Name() string   { return "SubmitSharesExtended" }
func (m *SubmitSharesExtended) encode(w *writer) {
	m.SubmitSharesStandard.encode(w)
	w.bytes8("extranonce", m.Extranonce, MaxExtranoncePrefix)
}
func (m *SubmitSharesExtended) decode(r *reader) {
	m.SubmitSharesStandard.decode(r)
	m.Extranonce = r.bytes8("extranonce", MaxExtranoncePrefix)
}
