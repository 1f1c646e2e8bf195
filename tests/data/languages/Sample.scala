package cats.data

/** A validated value: valid or invalid. */
sealed abstract class Validated[+E, +A] extends Product with Serializable {
  def isValid: Boolean

  /** Fold both sides. */
  def fold[B](fe: E => B, fa: A => B): B = this match {
    case Valid(a)   => fa(a)
    case Invalid(e) => fe(e)
  }
}

object Validated {
  def valid[A](a: A): Validated[Nothing, A] = Valid(a)

  private[data] def helper(x: Int): Int = {
    def inner(y: Int) = y + 1
    inner(x)
  }
}

trait Semigroup[A] {
  def combine(x: A, y: A): A
}

case class Valid[+A](a: A) extends Validated[Nothing, A] {
  def isValid: Boolean = true
}

def topLevel(x: Int): Int = x

/** Syntax for any value. */
package object syntax {
  def validNel[A](a: A): Validated[Nothing, A] = Valid(a)
}
