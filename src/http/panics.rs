//! Knowing, in the panic hook, whether a request was being answered: the hook then
//! logs where the panic happened and nothing of what was being handled.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    static ANSWERING: Cell<bool> = const { Cell::new(false) };
}

/// Is this thread polling a request's answer right now?
pub fn answering() -> bool {
    ANSWERING.with(Cell::get)
}

/// A request's answer, marked as such while it is polled.
pub struct Answering<F>(pub F);

impl<F: Future + Unpin> Future for Answering<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let outer = ANSWERING.with(|a| a.replace(true));
        // Restored on the way out, panicking or not.
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                ANSWERING.with(|a| a.set(self.0));
            }
        }
        let _restore = Restore(outer);
        Pin::new(&mut self.0).poll(cx)
    }
}
