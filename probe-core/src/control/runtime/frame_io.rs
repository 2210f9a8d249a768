//! Reading and writing frames on QUIC streams.

use crate::control::messages::{FrameError, HEADER_LEN, Message, body_len, encode};

/// Why a frame could not be read from a stream.
#[derive(Debug)]
pub(super) enum ReadFrameError {
    /// The frame itself is bad (too long).
    Frame(FrameError),
    /// The stream ended or failed before a whole frame arrived.
    Stream(String),
}

/// Reads one frame body (bounded by the frame size limit).
pub(super) async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Vec<u8>, ReadFrameError> {
    let mut header = [0; HEADER_LEN];
    recv.read_exact(&mut header)
        .await
        .map_err(|e| ReadFrameError::Stream(e.to_string()))?;
    let len = body_len(header).map_err(ReadFrameError::Frame)?;
    let mut body = vec![0; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| ReadFrameError::Stream(e.to_string()))?;
    Ok(body)
}

/// Why a message could not be written to a stream.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the message to the stream: {0}")]
pub(super) struct WriteMessageError(#[from] quinn::WriteError);

/// Writes one message as a frame.
pub(super) async fn write_message(
    send: &mut quinn::SendStream,
    msg: &Message,
) -> Result<(), WriteMessageError> {
    send.write_all(&encode(msg)).await?;
    Ok(())
}
