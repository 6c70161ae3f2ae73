//! An [`Error`] answered over HTTP in a server's own wire format.

use std::marker::PhantomData;

use axum::response::{IntoResponse, Response};

use crate::Error;

/// How a server words an [`Error`]: the status its kind maps to and the body it sends.
pub trait WireFormat {
    fn answer(e: &Error) -> Response;
}

/// An [`Error`] on its way to the client in wire format `W`: handlers return
/// `Result<Response, HttpError<W>>` and `?` converts.
pub struct HttpError<W>(Error, PhantomData<W>);

impl<W> From<Error> for HttpError<W> {
    fn from(e: Error) -> Self {
        HttpError(e, PhantomData)
    }
}

impl<W: WireFormat> IntoResponse for HttpError<W> {
    fn into_response(self) -> Response {
        W::answer(&self.0)
    }
}
