package wire

// Method names of Stratum v1 as deployed.
const (
	MethodSubscribe           = "mining.subscribe"
	MethodAuthorize           = "mining.authorize"
	MethodConfigure           = "mining.configure"
	MethodSubmit              = "mining.submit"
	MethodExtranonceSubscribe = "mining.extranonce.subscribe"
	MethodSuggestDifficulty   = "mining.suggest_difficulty"
	// MethodSuggestTarget is the older form of suggest_difficulty that
	// some miners still send (a target as hex instead of a difficulty).
	MethodSuggestTarget  = "mining.suggest_target"
	MethodNotify         = "mining.notify"
	MethodSetDifficulty  = "mining.set_difficulty"
	MethodSetExtranonce  = "mining.set_extranonce"
	MethodSetVersionMask = "mining.set_version_mask"
	MethodPing           = "mining.ping"
	MethodReconnect      = "client.reconnect"
	MethodShowMessage    = "client.show_message"
	MethodGetVersion     = "client.get_version"
)

// Error codes (stratum/PROTOCOL.md#errors). 20 to 25 are the share codes of
// the slush documentation that most pools use; the negative ones are what
// pools built on other stacks send.
const (
	CodeOther         = 20 // any other reason
	CodeJobNotFound   = 21 // job not found: the share is stale
	CodeDuplicate     = 22
	CodeLowDifficulty = 23
	CodeUnauthorized  = 24 // unauthorized worker
	CodeNotSubscribed = 25
	// CodeVersionMask refuses version bits outside the negotiated mask
	// (the code the proxy and the test pool give it; pools vary).
	CodeVersionMask = 33

	// CodeGeneric is the catch-all of miningcore-based pools.
	CodeGeneric = -1
	// CodeService is the reference stratum-mining pool's code for every
	// share error (its ServiceException).
	CodeService = -2
	// CodeMethodNotFound answers a request for a method the peer does not
	// know (stratum-mining's MethodNotFoundException).
	CodeMethodNotFound = -3
)
