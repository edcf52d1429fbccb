//! Floats written the way Python's `repr` writes them.
//!
//! Paddle's verbose line and the reference traces print `repr(float)`: the shortest digits
//! that read back to the same `f64` (as Rust's `Display` also finds), laid out by CPython's
//! rule (`format_float_short`, mode `'r'`): positional when the decimal point falls within
//! -4 < decpt <= 16, else scientific with a signed exponent of at least two digits, and
//! always a `.0` on integral values. So `0.5`, `1.0`, `1e-05`, `1e+16`.

use std::fmt::{self, Write};

/// Displays an `f64` exactly as Python's `repr` would.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PyFloat(pub f64);

impl fmt::Display for PyFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("nan");
        }
        if x.is_infinite() {
            return f.write_str(if x > 0.0 { "inf" } else { "-inf" });
        }
        if x.is_sign_negative() {
            f.write_char('-')?;
        }
        if x == 0.0 {
            return f.write_str("0.0");
        }
        // Rust's `{:e}` gives the shortest round-trip digits as `d.ddde[-]x`.
        let mut buf = StackBuf::default();
        write!(buf, "{:e}", x.abs())?;
        let text = buf.as_str();
        let (mantissa, exponent) = text.split_once('e').ok_or(fmt::Error)?;
        let exponent: i32 = exponent.parse().map_err(|_| fmt::Error)?;
        let (head, tail) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = DigitsView { head, tail };
        let n = digits.len() as i32;
        let decpt = exponent + 1;
        if -4 < decpt && decpt <= 16 {
            if decpt <= 0 {
                f.write_str("0.")?;
                for _ in 0..-decpt {
                    f.write_char('0')?;
                }
                digits.write_range(f, 0, n)
            } else if decpt >= n {
                digits.write_range(f, 0, n)?;
                for _ in 0..decpt - n {
                    f.write_char('0')?;
                }
                f.write_str(".0")
            } else {
                digits.write_range(f, 0, decpt)?;
                f.write_char('.')?;
                digits.write_range(f, decpt, n)
            }
        } else {
            digits.write_range(f, 0, 1)?;
            if n > 1 {
                f.write_char('.')?;
                digits.write_range(f, 1, n)?;
            }
            let sign = if exponent < 0 { '-' } else { '+' };
            write!(f, "e{sign}{:02}", exponent.unsigned_abs())
        }
    }
}

/// The significant digits of `{:e}` output without the decimal point between them.
struct DigitsView<'a> {
    head: &'a str,
    tail: &'a str,
}

impl DigitsView<'_> {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    fn write_range(&self, f: &mut fmt::Formatter<'_>, from: i32, to: i32) -> fmt::Result {
        let all = self.head.bytes().chain(self.tail.bytes());
        for digit in all.skip(from as usize).take((to - from) as usize) {
            f.write_char(digit as char)?;
        }
        Ok(())
    }
}

/// Enough room for any `{:e}` of an `f64` (`1.2345678901234567e-308` is 23 bytes),
/// so that formatting never touches the heap.
#[derive(Default)]
struct StackBuf {
    bytes: [u8; 32],
    len: usize,
}

impl StackBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::PyFloat;

    fn repr(x: f64) -> String {
        PyFloat(x).to_string()
    }

    #[test]
    fn matches_python_repr() {
        // Each pair is (value, Python 3 `repr(value)`).
        let cases = [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (-2.0, "-2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1.5e-07, "1.5e-07"),
            (0.5333333333333333, "0.5333333333333333"),
            (0.5653400000000001, "0.5653400000000001"),
            (123.0, "123.0"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1.2345678901234567e16, "1.2345678901234568e+16"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (value, python) in cases {
            assert_eq!(repr(value), python, "repr of {value:e}");
        }
    }
}
