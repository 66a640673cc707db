// Package notify posts JSON events (block found, new best share, pool
// down) to an operator's webhook. Delivery must never slow mining: Notify
// only queues, a bounded queue drops (and counts) what it cannot hold, and
// one goroutine posts with retries and backoff. Webhook URLs often carry a
// secret token in the path, so the URL is never logged beyond its host.
package notify
