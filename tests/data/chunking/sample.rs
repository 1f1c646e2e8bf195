//! A tiny stack.

use std::fmt;

/// A stack of values.
/// Grows without bound.
#[derive(Debug, Default)]
pub struct Stack<T> {
    items: Vec<T>,
}

impl<T> Stack<T> {
    /// Push a value.
    pub fn push(&mut self, value: T) {
        self.items.push(value);
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }
}

pub trait Shape {
    fn area(&self) -> f64;

    // Twice the area.
    fn double(&self) -> f64 {
        self.area() * 2.0
    }
}

impl<T: fmt::Debug> fmt::Display for Stack<T> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.items)
    }
}

pub enum Color {
    Red,
    Green,
}

mod util {
    pub fn clamp(x: i32) -> i32 {
        x.max(0)
    }
}
