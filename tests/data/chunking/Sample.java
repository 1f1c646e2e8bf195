package com.example;

import java.util.List;

/**
 * A bank account.
 */
@Entity
public class Sample {
    private long balance;

    /** Make an empty account. */
    public Sample() {
        this.balance = 0;
    }

    // Adds money.
    @Override
    public void deposit(long amount) {
        balance += amount;
    }

    interface Listener {
        void changed(long balance);
    }

    enum Kind {
        CHECKING,
        SAVINGS;

        boolean isSavings() {
            return this == SAVINGS;
        }
    }

    record Entry(long amount, String memo) {}
}
