import React from "react";

type Props = { label: string };

/** A button that counts clicks. */
export function Counter({ label }: Props) {
  const [count, setCount] = React.useState(0);
  const onClick = () => setCount(count + 1);
  return <button onClick={onClick}>{label}: {count}</button>;
}

export const Badge = ({ label }: Props) => <span className="badge">{label}</span>;

export default class Panel extends React.Component<Props> {
  render() {
    return <div>{this.props.label}</div>;
  }
}
